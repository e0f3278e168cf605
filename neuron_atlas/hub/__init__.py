"""The Hugging Face Hub as an atlas' home.

Reading (below ``Atlas``, importing nothing above it): ``address`` parses ``hf://datasets/org/name[@rev]`` and maps
Hub errors, ``filesystem`` reads files lazily with timeouts and retries, ``remote`` locates an atlas lazily or as a
cached snapshot. Publishing (above ``Atlas``): ``card`` renders the data card, ``commit`` makes one commit to a repo
(create, branch, upload; the one sequence every publisher uses), ``publish`` exports and pushes an atlas.
Names load on first use, so reading an ``hf://`` atlas never imports the publishing side.
"""
from .._utils.lazy import lazy_attributes

__getattr__ = lazy_attributes(__name__, {
    "HubAddress": "address", "endpoint": "address", "parse_hf_url": "address", "filesystem": "filesystem",
    "MANIFEST": "remote", "RemoteRoot": "remote", "locate": "remote",
    "FIGURE_PATH": "card", "card_summary": "card", "dataset_configs": "card", "render_card": "card",
    "ROWS_PER_GROUP": "publish", "export": "publish", "plan_commit": "publish", "push": "publish",
    "open_hub": "publish",
})

__all__ = ["FIGURE_PATH", "MANIFEST", "ROWS_PER_GROUP", "HubAddress", "RemoteRoot", "card_summary", "dataset_configs",
           "endpoint", "export", "filesystem", "locate", "open_hub", "parse_hf_url", "plan_commit", "push", "render_card"]
