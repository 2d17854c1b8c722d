"""Common-capability layer (7.3), AI serving: the model-serving slot on the GPU/NPU pool."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Workload
from citykit.contract.registry import component


@component
class Ollama(Component):
    name: ClassVar[str] = "ollama"
    capability: ClassVar[str] = "ai-serving"
    layer = layers.COMMON
    summary: ClassVar[str] = "Model serving slot for city large models, on the GPU/NPU pool."
    docs: ClassVar[str] = (
        "An Ollama server on the GPU pool (tainted nodes; this component tolerates the taint "
        "and asks for one GPU per replica). Cities with their own serving stack replace it."
    )
    images = {"main": Image("docker.io/ollama/ollama", "0.6.5")}
    ports = (Port("http", 11434),)
    # Pulled models live in the /.ollama emptyDir: room for a few 7B-14B models (limit 4x).
    resources = Resources(cpu_millis=2000, memory_mi=8192, ephemeral_mi=8192)
    pool = "gpu"
    workload = Workload(Probe("http", "/"), writable=("/tmp", "/.ollama"))
