"""Config dataclasses as declared ROS 2 node parameters (``ros2 param list / get`` work).

Every leaf field of an arm or camera config becomes a parameter named by its dotted path,
``arm.type``, ``arm.action``, ``arm.canvas_origin_m``, ``arm.workspace.margin_m``: numbers,
strings and booleans as themselves, tuples as ROS arrays (``-p arm.canvas_origin_m:=[0.5,0.1,
0.02]``, ``-p arm.joint_names:="['j1', ...]"``), a tuple of (x, y) pairs as a flat array
(``arm.workspace.paint_stations``: x0, y0, x1, y1, ...). Values given on the command line
(``--arm.x=...``, the older form) become the declared defaults, so parameters set with
``--ros-args -p`` or a launch file take precedence. The config is then built from the
parameters through `robot.cli_config.build_config`, with its checks and clear errors.
"""

from __future__ import annotations

import dataclasses
import json

from rcl_interfaces.msg import ParameterDescriptor

from robot.cli_config import build_config

_DYNAMIC = ParameterDescriptor(dynamic_typing=True)


def _leaves(config, prefix: str):
    """(dotted name, value) for every leaf field of a config dataclass."""
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        name = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, name)
        else:
            yield name, value


def _to_param(value):
    """A config value as a ROS parameter value (None: leave the parameter unset)."""
    if isinstance(value, tuple | list):
        flat = [v for item in value for v in (item if isinstance(item, tuple | list) else [item])]
        if not flat:
            return None
        if all(isinstance(v, str) for v in flat):
            return [str(v) for v in flat]
        return [float(v) for v in flat]
    return value


def _to_option(value, default) -> str:
    """A parameter value as the raw option text `build_config` parses, shaped like default."""
    if isinstance(default, tuple | list):
        items = list(value)
        if default and isinstance(default[0], tuple | list):  # pairs, flattened
            width = len(default[0])
            if len(items) % width:
                raise ValueError(f"needs a multiple of {width} numbers, got {len(items)}")
            items = [items[k : k + width] for k in range(0, len(items), width)]
        return json.dumps(items)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def declare_and_build(node, group: str, options: dict[str, str], lookup, default_type: str):
    """Declare ``<group>.*`` parameters on ``node`` (defaults: ``options``, raw flag values)
    and build the config from their values.

    Raises:
        robot.cli_config.ConfigError: a value that does not fit (names the parameter).
    """
    options = dict(options)
    type_name = node.declare_parameter(
        f"{group}.type", options.pop("type", default_type), _DYNAMIC
    ).value
    defaults = build_config(group, options, lookup, type_name)
    raw: dict[str, str] = {}
    for name, value in _leaves(defaults, group):
        param = _to_param(value)
        if param is None:  # an empty tuple: declared only when set (-p name:=[...])
            declared = node.declare_parameter(name, None, _DYNAMIC).value
            if declared is None:
                continue
        else:
            declared = node.declare_parameter(name, param, _DYNAMIC).value
        if declared is None or declared == param:
            continue
        try:
            raw[name[len(group) + 1 :]] = _to_option(declared, value)
        except ValueError as e:
            raise ValueError(f"parameter {name}: {e}") from None
    return build_config(group, {**options, **raw}, lookup, type_name)
