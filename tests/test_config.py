"""Config machinery: YAML + dotted overrides, type checks, unknown keys, resolved dump."""

from __future__ import annotations

import pytest

from voyager_pipe.config import PipelineConfig, describe, dump_config, load_config, parse_override
from voyager_pipe.errors import InputError


def test_override_sets_nested_value_with_type():
    cfg = load_config(overrides=["render.splat_radius=2", "seed=7", "generate.sigma_init=0.5"])
    assert cfg.render.splat_radius == 2 and isinstance(cfg.render.splat_radius, int)
    assert cfg.seed == 7
    assert cfg.generate.sigma_init == 0.5
    # the defaults are untouched by an override on another instance
    assert PipelineConfig().render.splat_radius == 0


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert load_config(overrides=["generate.sigma_init=1"]).generate.sigma_init == 1.0
    with pytest.raises(InputError, match="render.splat_radius"):
        load_config(overrides=["render.splat_radius=1.5"])


@pytest.mark.parametrize("text, field", [
    ("render.nope=1", "render.nope"),
    ("nope.x=1", "nope"),
    ("render.backend=opengl", "render.backend"),
    ("output.write_video=maybe", "output.write_video"),
])
def test_bad_overrides_name_the_field(text, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        load_config(overrides=[text])


def test_override_without_equals_is_an_error():
    with pytest.raises(InputError, match="key=value"):
        parse_override("render.splat_radius")


def test_yaml_file_then_override_and_dump_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("render:\n  splat_radius: 3\ngenerate:\n  clip_len: 9\n")
    cfg = load_config(path, overrides=["generate.clip_len=17"])
    assert cfg.render.splat_radius == 3 and cfg.generate.clip_len == 17
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    assert load_config(out) == cfg


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("render:\n  unknown_key: 1\n")
    with pytest.raises(InputError, match="bad.yaml.*unknown_key"):
        load_config(path)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match="unsafe.yaml"):
        load_config(unsafe)


def test_every_option_has_help():
    rows = describe()
    assert len(rows) > 10
    assert [key for key, _, help_text in rows if not help_text] == []
