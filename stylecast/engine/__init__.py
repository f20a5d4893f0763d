"""The runtime: numpy, onnxruntime, moderngl. Never imports torch, models/, training/ or
server/ (tests/test_architecture.py checks this)."""
