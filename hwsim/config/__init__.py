"""Hardware configurations: validated at the edge, loaded from YAML or a preset name.

`load_hardware("edge-npu")` or `load_hardware("my_npu.yaml")` returns a `HardwareConfig`: an
`NPU`, an `FPGA` or a `CGRA`, told apart by their `kind` field (a pydantic discriminated
union). Every field is checked strictly (no bool or text for a number); unknown fields are
rejected; errors carry the field's path
(`ConfigError: edge.yaml: sram.size_kib: Input should be greater than 0`).

Units are in the field names (`_mhz`, `_kib`, `_gbps` = GB/s, `_ns`, `_mw`) so a YAML file reads
without a manual. `docs/config.md` is generated from the JSON schema of `HardwareConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from .base import Clocked, ConfigError, Datatype, Dram, DramType, Strict, Technology
from .fabric import CGRA, FPGA, LANE_DTYPE, Bitstream, ConfigPort, Contexts, FpgaResources, LaneCost, PEGrid, Scratchpad
from .npu import NPU, Buffer, Dataflow, Interconnect, SplitBuffers, SystolicArray, VectorUnit

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

# Every hardware model has `kind`, `name`, `clock_hz` and `technology`.
HardwareConfig = Annotated[Union[NPU, FPGA, CGRA], Field(discriminator="kind")]
KINDS: dict[str, type[NPU | FPGA | CGRA]] = {"npu": NPU, "fpga": FPGA, "cgra": CGRA}
_ADAPTER: TypeAdapter[NPU | FPGA | CGRA] = TypeAdapter(HardwareConfig)

# A hardware config is a page of YAML; anything larger is not one (and `--hw /dev/zero` must
# not read forever).
MAX_CONFIG_BYTES = 1 << 20


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_hardware(name_or_path: str | Path) -> NPU | FPGA | CGRA:
    """A preset name (`edge-npu`) or a YAML file path. Raises ConfigError with one clear line."""
    text_path = Path(name_or_path)
    if text_path.suffix.lower() in (".yaml", ".yml") or text_path.exists():
        where = str(text_path)
        text = read_config_text(text_path, where)
    else:
        name = str(name_or_path)
        if name not in presets():
            raise ConfigError(f"unknown hardware preset {name!r}; known presets: {', '.join(presets())}"
                              " (or give a path to a .yaml file)")
        where = f"preset {name}"
        text = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_hardware(text, where)


def read_config_text(path: Path, where: str) -> str:
    """The text of a small YAML file, read with a bound (a device or an endless stream is refused)."""
    try:
        if path.is_dir():
            raise ConfigError(f"{where}: is a directory, not a YAML file")
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{where}: cannot read ({e.__class__.__name__}: {e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None


def parse_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load` with errors as one line (position, or nesting too deep)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{pos}") from None
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply") from None


def parse_hardware(text: str, where: str = "<string>") -> NPU | FPGA | CGRA:
    return validate_hardware(parse_yaml(text, where), where)


def validate_hardware(data: Any, where: str = "<data>") -> NPU | FPGA | CGRA:
    """A config from plain data (what YAML gives), validated; ConfigError naming the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'kind' field ({', '.join(KINDS)}) at the top level")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"{where}: kind: unknown hardware kind {kind!r}; known kinds: {', '.join(KINDS)}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        raise ConfigError(f"{where}: {_first_error(e, kind)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None


def _first_error(e: ValidationError, kind: str) -> str:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if loc and loc[0] == kind:   # the union's tag, not a field
        loc = loc[1:]
    extra = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"{'.'.join(loc) or 'hardware'}: {err['msg']}{extra}"


def hardware_schema() -> dict[str, Any]:
    """The JSON schema of every hardware kind (the source of docs/config.md)."""
    return _ADAPTER.json_schema()


__all__ = [
    "HardwareConfig", "KINDS", "NPU", "FPGA", "CGRA", "ConfigError", "Clocked", "Strict", "Technology", "Dram",
    "DramType", "Datatype", "Dataflow", "Buffer", "SplitBuffers", "SystolicArray", "VectorUnit", "Interconnect",
    "FpgaResources", "LaneCost", "LANE_DTYPE", "ConfigPort", "Bitstream", "PEGrid", "Contexts", "Scratchpad",
    "PRESET_DIR", "MAX_CONFIG_BYTES", "presets", "load_hardware", "parse_hardware", "validate_hardware",
    "read_config_text", "parse_yaml", "hardware_schema",
]
