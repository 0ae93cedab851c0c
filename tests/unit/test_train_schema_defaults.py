"""The trainer and checkpoint defaults live in the schema; the YAML shows them and must not drift from it.

conf/<group>/default.yaml keeps its values (it is what a user reads and copies, with a comment per
key); this test holds each value equal to the schema dataclass's default, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses

import pytest
from ft_helpers.paths import CONF_DIR
from omegaconf import OmegaConf

from train.config.schema import SCHEMAS

RENAMED = {"val_every", "val_batches"}  # schema-only: they exist to refuse old configs with a message


@pytest.mark.parametrize("group", sorted(SCHEMAS))
def test_the_default_yaml_shows_every_schema_default_with_the_same_value(group):
    yaml = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / "default.yaml"))
    yaml.pop("defaults", None)
    schema = {f.name: f.default for f in dataclasses.fields(SCHEMAS[group]) if f.name not in RENAMED}
    assert set(yaml) == set(schema), f"conf/{group}/default.yaml and the schema list different keys"
    typed = OmegaConf.merge(OmegaConf.structured(SCHEMAS[group]), yaml)  # as composition types it (32 -> "32")
    for key, default in schema.items():
        assert typed[key] == default, f"conf/{group}/default.yaml: {key}: {yaml[key]!r}, the schema's default is {default!r}"
