"""Model cards: README.md with the Hub's YAML metadata, validated by huggingface_hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from ..atomic import atomic_path


def write_model_card(folder, *, metadata: dict, title: str, description: str, usage_snippet: str,
                     extra_sections: dict | None = None) -> Path:
    """Writes ``folder/README.md`` (atomically) and returns its path.

    ``metadata``: Hub card fields (library_name, pipeline_tag, tags, base_model, license,
    datasets, ...); None values are dropped. ``extra_sections``: heading -> Markdown text.
    """
    data = ModelCardData(**{key: value for key, value in metadata.items() if value is not None})
    sections = [f"# {title}", description.strip(), "## Usage", f"```python\n{usage_snippet.strip()}\n```"]
    for heading, text in (extra_sections or {}).items():
        sections += [f"## {heading}", text.strip()]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
    path = Path(folder) / "README.md"
    with atomic_path(path) as temporary:
        card.save(temporary)
    return path
