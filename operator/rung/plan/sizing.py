"""Resource requests for cost estimates: quantities, a predictor's and a Job's requests (pure).

Quantities are read with the Kubernetes client's own parser (`parse_quantity`) and
rounded up to whole millicores and bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from kubernetes.utils import parse_quantity
from pydantic import computed_field
from pydantic.dataclasses import dataclass

from rung.api._base import CAMEL_CASE
from rung.api.spec import ModelDeploymentSpec

KSERVE_DEFAULT_CPU_MILLICORES = 1000
"""CPU request KServe gives a predictor container that sets none (`inferenceService.resource`
in KServe's `inferenceservice-config` ConfigMap, v0.20: cpuRequest "1")."""
KSERVE_DEFAULT_MEMORY_BYTES = 2 * 1024**3
"""Memory request KServe gives a predictor container that sets none (memoryRequest "2Gi")."""

TIMES = "\u00d7"
"""Multiplication sign, as in `+1 replica \u00d7 500m CPU / 1Gi`."""
TO = "\u2013"
"""En dash of ranges, as in `1\u20133 replicas`."""

RequestsSource = Literal[
    "spec", "spec + kserve default", "kserve default", "rung default", "job template", "unknown"
]


@dataclass(frozen=True, config=CAMEL_CASE)
class Resources:
    """Resource requests: CPU in millicores, memory in bytes, whole GPUs.

    In JSON also as quantity strings (`cpu`, `memory`)."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cpu(self) -> str:
        """The CPU request as a quantity (`500m`, `2`)."""
        return format_cpu(self.cpu_millicores)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def memory(self) -> str:
        """The memory request as a quantity (`1Gi`)."""
        return format_memory(self.memory_bytes)

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_millicores + other.cpu_millicores,
            self.memory_bytes + other.memory_bytes,
            self.gpus + other.gpus,
        )

    def times(self, count: int) -> Resources:
        """These requests `count` times over."""
        return Resources(self.cpu_millicores * count, self.memory_bytes * count, self.gpus * count)

    def describe(self) -> str:
        """`500m CPU / 1Gi`, with `/ 1 GPU` when there are GPUs."""
        text = f"{self.cpu} CPU / {self.memory}"
        if self.gpus:
            text += f" / {self.gpus} GPU"
        return text


def _quantity(quantity: int | str, what: str) -> Decimal:
    """A non-negative quantity; ValueError naming `what` when it is not one."""
    text = str(quantity)
    try:
        number = Decimal(parse_quantity(text))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        number = Decimal(-1)
    if text != "".join(text.split()) or not number.is_finite() or number < 0:
        raise ValueError(f"not a {what} quantity: {quantity!r}")
    return number


def parse_cpu(quantity: int | str) -> int:
    """Millicores in a CPU quantity (`500m` -> 500, `2` -> 2000, `0.5` -> 500), rounded up."""
    return math.ceil(_quantity(quantity, "CPU") * 1000)


def parse_memory(quantity: int | str) -> int:
    """Bytes in a memory quantity (`1Gi`, `512Mi`, `1G`, `1e9`, `1048576`), rounded up."""
    return math.ceil(_quantity(quantity, "memory"))


def format_cpu(millicores: int) -> str:
    """`500m`, or whole cores as `1`, `2`."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(num_bytes: int) -> str:
    """The largest binary unit that divides `num_bytes` evenly (`1Gi`, `1536Mi`)."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num_bytes and num_bytes % factor == 0:
            return f"{num_bytes // factor}{unit}"
    if num_bytes >= 2**20:
        return f"{num_bytes / 2**20:.1f}Mi"
    return str(num_bytes)


def requests_of(
    requests: Mapping[str, int | str] | None, limits: Mapping[str, int | str] | None
) -> Resources | None:
    """Requests of one container; GPUs may be given as limits only. None when unparseable."""
    requests, limits = requests or {}, limits or {}
    try:
        cpu = parse_cpu(requests["cpu"]) if "cpu" in requests else 0
        memory = parse_memory(requests["memory"]) if "memory" in requests else 0
        gpus = sum(int(v) for k, v in {**limits, **requests}.items() if k.endswith("/gpu"))
    except ValueError:
        return None
    return Resources(cpu, memory, gpus)


def predictor_requests(spec: ModelDeploymentSpec) -> tuple[Resources | None, RequestsSource]:
    """Requests of one predictor replica: the spec's, with KServe's defaults for what is unset."""
    res = spec.model.resources
    requests = dict(res.requests or {}) if res else {}
    parsed = requests_of(requests, dict(res.limits or {}) if res else {})
    if parsed is None:
        return None, "unknown"
    cpu = parsed.cpu_millicores if "cpu" in requests else KSERVE_DEFAULT_CPU_MILLICORES
    memory = parsed.memory_bytes if "memory" in requests else KSERVE_DEFAULT_MEMORY_BYTES
    set_here = sum(k in requests for k in ("cpu", "memory"))
    source: RequestsSource = (
        "spec" if set_here == 2 else "kserve default" if set_here == 0 else "spec + kserve default"
    )
    return Resources(cpu, memory, parsed.gpus), source


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else empty (Job templates are free-form)."""
    return value if isinstance(value, Mapping) else {}


def job_requests(template: Mapping[str, Any]) -> Resources | None:
    """Summed container requests of a Job spec (`template.spec.containers`), if any."""
    pod = _mapping(_mapping(template.get("template")).get("spec"))
    containers = pod.get("containers")
    total = Resources()
    for container in containers if isinstance(containers, list) else []:
        resources = _mapping(_mapping(container).get("resources"))
        one = requests_of(_mapping(resources.get("requests")), _mapping(resources.get("limits")))
        if one is None:
            return None
        total += one
    return total if total != Resources() else None


def requests_text(resources: Resources | None, source: RequestsSource | None) -> str:
    """`500m CPU / 1Gi`, saying when KServe's defaults fill in (or that they are unparseable)."""
    if resources is None:
        return "unparseable resource requests"
    suffix = {
        "kserve default": " (KServe default requests)",
        "spec + kserve default": " (partly KServe default requests)",
    }.get(source or "", "")
    return resources.describe() + suffix


def replicas_text(low: int, high: int, noun: str = "replica") -> str:
    """`1 replica`, `2\u20134 replicas`."""
    count = str(low) if low == high else f"{low}{TO}{high}"
    return f"{count} {noun}{'' if high == 1 else 's'}"


def rate_text(value: float) -> str:
    """A rate with one decimal below 10, none above."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"
