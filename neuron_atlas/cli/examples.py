"""One or two examples per command, shown at the end of its ``--help`` (a literal table, one entry per command)."""
from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "models": ("neuron-atlas models", "neuron-atlas models --available"),
    "languages": ("neuron-atlas languages gemma-3-270m", "neuron-atlas languages smollm2-135m -f csv > langs.csv"),
    "neurons": ("neuron-atlas neurons gemma-3-270m --lang tl",
                "neuron-atlas neurons gemma-3-270m --lang tl,id --size 0.5% --by-layer"),
    "methods": ("neuron-atlas methods",),
    "panels": ("neuron-atlas panels",),
    "steering-vector": ("neuron-atlas steering-vector gemma-3-270m --lang tl --layer 12 --output tl.safetensors",
                        "neuron-atlas steering-vector gemma-3-270m --lang tl --against en,id --output tl.npy"),
    "overlap": ("neuron-atlas overlap gemma-3-270m --lang tl,id,ms,en --plot overlap.png",),
    "sql": ("neuron-atlas sql \"SELECT lang, count(*) AS n FROM lape WHERE model = ? GROUP BY lang\" -p gemma-3-270m",),
    "info": ("neuron-atlas info", "neuron-atlas info --atlas hf://datasets/org/atlas"),
    "explore": ("neuron-atlas explore --out site --open", "neuron-atlas explore hf://datasets/org/atlas --out site"),
    "build": ("neuron-atlas build --model smollm2-135m --corpus udhr --lang tl,id,sw --out ATLAS",),
    "merge": ("neuron-atlas merge OTHER_ATLAS ATLAS",),
    "import": ("neuron-atlas import llama-1 --atlas ATLAS",),
    "features": ("neuron-atlas features gemma-3-270m --pair sw-en --pair fr-en --atlas ATLAS",),
    "push": ("neuron-atlas push ATLAS --repo you/my-atlas --dry-run",),
    "export": ("neuron-atlas export ATLAS hub_layout --repo you/my-atlas",),
    "verify": ("neuron-atlas verify ATLAS",),
    "migrate-tags": ("neuron-atlas migrate-tags ATLAS",),
}


def epilog(command: str) -> str | None:
    """The ``--help`` epilog of ``command``: its examples, one per line (None when it has none)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "Examples:\n\n" + "\n\n".join(f"  $ {line}" for line in lines)
