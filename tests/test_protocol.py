"""server/protocol.py: client message validation and the binary media header."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stylecast.server import protocol as p


def test_start_defaults_and_fields():
    m = p.parse_message('{"type": "start"}')
    assert m == p.Start("default", "neutral", 16_000, 1, frozenset({"video", "audio"}), None, None)
    m = p.parse_message(
        json.dumps(
            {
                "type": "start",
                "version": 1,
                "avatar": "me",
                "style": {"happy": 0.7, "sad": 0.3},
                "sample_rate": 44_100,
                "channels": 2,
                "outputs": ["motion"],
                "video": {"format": "jpeg", "size": 512, "quality": 90},
            }
        )
    )
    assert m.style == {"happy": 0.7, "sad": 0.3}
    assert (m.sample_rate, m.channels, m.outputs, m.size, m.quality) == (
        44_100,
        2,
        frozenset({"motion"}),
        512,
        90,
    )


@pytest.mark.parametrize(
    ("text", "code", "mentions"),
    [
        ("not json", p.BAD_JSON, "JSON"),
        ("[1, 2]", p.BAD_MESSAGE, "list"),
        ('{"type": "dance"}', p.BAD_MESSAGE, "dance"),
        ('{"kind": "start"}', p.BAD_MESSAGE, "None"),
        ('{"type": "start", "version": 2}', p.BAD_MESSAGE, "version 2"),
        ('{"type": "start", "sample_rate": 4000}', p.BAD_MESSAGE, "4000"),
        ('{"type": "start", "sample_rate": 16000.5}', p.BAD_MESSAGE, "16000.5"),
        ('{"type": "start", "sample_rate": true}', p.BAD_MESSAGE, "True"),
        ('{"type": "start", "channels": 3}', p.BAD_MESSAGE, "channels 3"),
        ('{"type": "start", "outputs": []}', p.BAD_MESSAGE, "outputs"),
        ('{"type": "start", "outputs": ["smell"]}', p.BAD_MESSAGE, "smell"),
        ('{"type": "start", "video": {"format": "h264"}}', p.BAD_MESSAGE, "h264"),
        ('{"type": "start", "video": {"size": 300}}', p.BAD_MESSAGE, "300"),
        ('{"type": "start", "avatar": ""}', p.BAD_MESSAGE, "avatar"),
        ('{"type": "set_style"}', p.BAD_MESSAGE, "style"),
        ('{"type": "set_style", "style": {"happy": -1}}', p.BAD_MESSAGE, "-1"),
        ('{"type": "set_style", "style": {"happy": 0}}', p.BAD_MESSAGE, "positive"),
        ('{"type": "set_style", "style": {}}', p.BAD_MESSAGE, "style"),
        ('{"type": "set_style", "style": 5}', p.BAD_MESSAGE, "5"),
    ],
)
def test_bad_messages_name_what_was_wrong(text, code, mentions):
    with pytest.raises(p.ProtocolError) as e:
        p.parse_message(text)
    assert e.value.code == code
    assert mentions in str(e.value)


def test_nan_weights_refused():
    with pytest.raises(p.ProtocolError):
        p.parse_message('{"type": "set_style", "style": {"happy": NaN}}')


def test_control_messages():
    for name in ("end_segment", "clear", "ping", "start"):
        assert p.type_name(p.parse_message(json.dumps({"type": name}))) == name
    assert type(p.parse_message('{"type": "clear"}')) is p.Clear  # empty tuples compare equal
    assert p.parse_message('{"type": "ping", "id": 7}') == p.Ping(7)
    assert p.parse_message('{"type": "set_style", "style": "sad"}') == p.SetStyle("sad")


@pytest.mark.parametrize("index", [0, 1, 29, 30, 123_456, 2**32 - 1])
def test_media_header_round_trip(index):
    payload = bytes(range(7))
    data = p.pack_media(p.KIND_AUDIO_PCM16, index, payload)
    assert len(data) == p.HEADER.size + len(payload) == 16 + 7
    h = p.unpack_media(data)
    assert (h.kind, h.index, h.payload) == (p.KIND_AUDIO_PCM16, index, payload)
    assert abs(h.pts_us - index * 1e6 / 30) <= 0.5


def test_media_header_refuses_garbage():
    with pytest.raises(p.ProtocolError):
        p.unpack_media(b"\x01\x01")
    with pytest.raises(p.ProtocolError):
        p.unpack_media(bytes([9, 1]) + bytes(14))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "end_segment", "clear", "set_style", "ping", "x"])},
    optional={
        "version": json_values,
        "avatar": json_values,
        "style": json_values | st.dictionaries(st.sampled_from(["happy", "sad"]), st.floats()),
        "sample_rate": json_values | st.integers(0, 100_000),
        "channels": json_values,
        "outputs": json_values | st.lists(st.sampled_from((*p.OUTPUTS, "x"))),
        "video": json_values,
        "id": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(messages.map(json.dumps), st.text(max_size=200)))
def test_fuzz_parse_only_raises_protocol_errors(text):
    """Whatever arrives, the parser returns a typed message or a ProtocolError."""
    try:
        msg = p.parse_message(text)
    except p.ProtocolError as e:
        assert e.code in (p.BAD_JSON, p.BAD_MESSAGE)
        assert str(e)
    else:
        assert isinstance(msg, p.Start | p.EndSegment | p.Clear | p.SetStyle | p.Ping)
