"""Model configs: the fields added after checkpoints shipped read old files as before."""

import pytest

from stylecast.engine.errors import FormatError, InputError
from stylecast.models.config import (
    ExpressionConfig,
    config_from_dict,
    config_to_dict,
    saas_config,
)


def test_old_saas_config_reads_as_before_the_bound_the_audio_norm_and_the_switch():
    data = config_to_dict(saas_config("small"))
    assert data["fields"]["expression"]["hyper_scale"] == 0.5
    del data["fields"]["expression"]["hyper_scale"]
    del data["fields"]["expression"]["audio_norm"]
    del data["fields"]["style"]["codebook"]
    old = config_from_dict(data)
    assert old.expression.hyper_scale is None and old.style.codebook is True
    assert old.expression.audio_norm is False
    assert config_from_dict(config_to_dict(old)) == old  # None survives the round trip


def test_other_missing_keys_are_still_errors():
    data = config_to_dict(saas_config("small"))
    del data["fields"]["expression"]["hyper_rank"]
    with pytest.raises(FormatError, match=r"missing keys \['hyper_rank'\]"):
        config_from_dict(data)


@pytest.mark.parametrize("scale", [0.0, -1.0, "0.5"])
def test_hyper_scale_must_be_positive_or_none(scale):
    with pytest.raises(InputError, match="hyper_scale"):
        ExpressionConfig(hyper_scale=scale)
