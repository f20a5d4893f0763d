"""TensorRT engines for the exported step graphs, built at fp16 with the `tensorrt` API.

    model = TensorRTMotion("assets/onnx/saas", max_batch=64)   # a MotionModel

NEVER RUN HERE: `tensorrt` cannot be installed on the machines this project was built on
(its libraries come from a vendor index they cannot reach, and they have no GPU). This
class is written against the TensorRT 10 Python API (`execute_async_v3`, named tensors)
and cuda-python for device memory; its tests are marked `tensorrt` and skip where the
package is absent. Expect fp16 differences of ~1e-3 from the fp32 graphs, so sampled pose
codes can differ from ONNX Runtime's when a uniform falls near a CDF boundary.

Each graph's engine is built once (batch profile 1 / `opt_batch` / `max_batch`) and cached
beside the graphs as `<graph>.fp16.b<max_batch>.engine`, keyed by the graph's sha256.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stylecast.engine.errors import BackendError
from stylecast.engine.onnx_backend import GraphMotion

log = logging.getLogger(__name__)


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "the 'tensorrt' backend needs the tensorrt Python package (NVIDIA's index) and "
            "cuda-python on a machine with an NVIDIA GPU; neither is installed here. Use "
            "'onnx-cpu' or 'onnx-cuda' instead"
        ) from e
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise BackendError("the 'tensorrt' backend needs cuda-python (pip cuda-python)") from e
    return trt, cudart


def _check_cuda(result: tuple) -> object:
    err, *rest = result
    if int(err) != 0:
        raise BackendError(f"CUDA runtime call failed with error {err}")
    return rest[0] if rest else None


class _Engine:
    """One graph as a TensorRT engine with an execution context."""

    def __init__(self, trt, cudart, onnx: Path, sha: str, opt: int, max_batch: int) -> None:
        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.WARNING)
        cache = onnx.with_name(f"{onnx.stem}.fp16.b{max_batch}.{sha[:12]}.engine")
        if cache.is_file():
            plan = cache.read_bytes()
        else:
            plan = self._build(logger, onnx, opt, max_batch)
            cache.write_bytes(plan)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize the engine built from {onnx}")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.outputs = [
            n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT
        ]
        self.stream = _check_cuda(cudart.cudaStreamCreate())

    def _build(self, logger, onnx: Path, opt: int, max_batch: int) -> bytes:
        trt = self.trt
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT cannot parse {onnx}: {errors}")
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = list(tensor.shape)
            sizes = [[b if d == -1 else d for d in shape] for b in (1, opt, max_batch)]
            profile.set_shape(tensor.name, *sizes)
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError(f"TensorRT failed to build an fp16 engine from {onnx}")
        return bytes(plan)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self.cudart
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        buffers = []
        try:
            for name, value in feeds.items():
                value = np.ascontiguousarray(value)
                self.context.set_input_shape(name, value.shape)
                ptr = _check_cuda(cudart.cudaMalloc(max(value.nbytes, 1)))
                buffers.append(ptr)
                if value.nbytes:
                    _check_cuda(cudart.cudaMemcpy(ptr, value.ctypes.data, value.nbytes, to_device))
                self.context.set_tensor_address(name, int(ptr))
            results = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
                results[name] = np.empty(shape, dtype)
                ptr = _check_cuda(cudart.cudaMalloc(max(results[name].nbytes, 1)))
                buffers.append(ptr)
                self.context.set_tensor_address(name, int(ptr))
            if not self.context.execute_async_v3(int(self.stream)):
                raise BackendError("TensorRT execution failed")
            _check_cuda(cudart.cudaStreamSynchronize(self.stream))
            for name, ptr in zip(self.outputs, buffers[len(feeds) :], strict=True):
                out = results[name]
                if out.nbytes:
                    _check_cuda(cudart.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, to_host))
            return results
        finally:
            for ptr in buffers:
                cudart.cudaFree(ptr)


class TensorRTMotion(GraphMotion):
    """The exported graphs as fp16 TensorRT engines (module docstring: never run here)."""

    runtime = "tensorrt"

    def __init__(
        self,
        folder: str | Path,
        opt_batch: int = 8,
        max_batch: int = 64,
        styles_dir: str | Path | None = None,
    ) -> None:
        trt, cudart = _import_tensorrt()
        super().__init__(folder, styles_dir)
        self.max_batch = max_batch
        self._engines = {
            key: _Engine(trt, cudart, self.manifest.path(key), g.sha256, opt_batch, max_batch)
            for key, g in self.manifest.graphs.items()
        }

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(next(iter(feeds.values())))
        if batch > self.max_batch:
            raise BackendError(f"batch {batch} exceeds the engines' max_batch {self.max_batch}")
        return self._engines[graph].run(feeds)
