"""The reference model's layers (draft revision of GB/T 34678, clause 7) as data.

Order matters: it is the order of the model from facilities up to applications, followed by the two
cross-cutting systems, and it is the order plans and reports list layers in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Zone(StrEnum):
    """Network security zones a namespace belongs to (政务外网 / 互联网区 / 管理区)."""

    INTERNET = "internet"  # 互联网区: faces devices and the public
    GOVERNMENT = "government"  # 政务外网: government extranet, where data and services live
    MANAGEMENT = "management"  # 管理区: security and operations tooling


@dataclass(frozen=True)
class Layer:
    key: str
    clause: str
    title: str
    title_zh: str
    zone: Zone

    @property
    def label(self) -> str:
        """The value of the `citykit.io/layer` label on every object of this layer."""
        return self.key


SENSING = Layer("sensing", "7.1.1", "Sensing facilities", "感知设施", Zone.INTERNET)
NETWORK = Layer("network", "7.1.2", "Network facilities", "网络设施", Zone.INTERNET)
COMPUTE = Layer("compute", "7.1.3", "Computing-power facilities", "算力设施", Zone.GOVERNMENT)
CIRCULATION = Layer(
    "circulation",
    "7.1.4",
    "Data circulation and utilisation facilities",
    "数据流通利用设施",
    Zone.GOVERNMENT,
)
DATA = Layer("data", "7.2", "Data layer", "数据层", Zone.GOVERNMENT)
COMMON = Layer("common", "7.3", "Common-capability layer", "共性能力层", Zone.GOVERNMENT)
APPLICATIONS = Layer("applications", "7.4", "Application layer", "应用层", Zone.GOVERNMENT)
SECURITY = Layer("security", "7.5", "Security-assurance system", "安全保障体系", Zone.MANAGEMENT)
OPERATIONS = Layer(
    "operations", "7.6", "Operations and maintenance system", "运营运维体系", Zone.MANAGEMENT
)

ALL: tuple[Layer, ...] = (
    SENSING,
    NETWORK,
    COMPUTE,
    CIRCULATION,
    DATA,
    COMMON,
    APPLICATIONS,
    SECURITY,
    OPERATIONS,
)
BY_KEY: dict[str, Layer] = {layer.key: layer for layer in ALL}
FACILITY_CLAUSE = "7.1"  # the facility layer groups 7.1.1 … 7.1.4


def index(layer: Layer) -> int:
    return ALL.index(layer)
