"""Registers pulsetrain's config schemas whenever Hydra starts, in any process.

Hydra imports every module under ``hydra_plugins`` when it starts, before it composes a config.
That is how ``ft_launcher`` (which must not import the training loop) composes ``conf/`` with the
same schemas as ``train.py``. A fork that removed ``train`` keeps working: only ``ft``'s schema
is registered then.
"""

from ft import register_configs

register_configs()
try:
    from train.config.schema import register_train_schemas
except ModuleNotFoundError as exc:  # a project without the template's train package
    if exc.name != "train":  # a module inside it has moved or is missing: say so, never skip silently
        raise
else:
    register_train_schemas()
