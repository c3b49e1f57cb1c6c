"""What identifies the weights behind a model name, read without loading them (and without importing
diffusers): the inpainting cache's key and the pipeline a process keeps in memory both carry it."""

from __future__ import annotations

from pathlib import Path


def is_local(model: str) -> bool:
    """Whether ``model`` names a folder on this machine rather than a hub id."""
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json")


def weights_stamp(model: str, revision: str | None = None,
                  index: str = "model_index.json") -> dict[str, list[int]] | str | None:
    """What changes when the weights behind ``model`` change, so that no cache serves what older weights
    made: a local pipeline folder's weight and config files by size and modification time (weights
    retrained into the same folder); for a hub id, the commit of its snapshot in the Hugging Face cache (a
    later download of the same revision; ``index`` is a file every snapshot of it has); None where it has none
    yet."""
    folder = Path(str(model)).expanduser()
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
        return {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
    if is_local(str(model)):
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(str(model), index, revision=revision)
    return Path(cached).parent.name if isinstance(cached, str) else None


def file_stamp(path: Path | None) -> tuple[str, int, int] | None:
    """A checkpoint file by its resolved path, size and modification time (None where there is none): a file
    replaced under the same name changes it."""
    if path is None or not path.is_file():
        return None
    status = path.stat()
    return str(path.resolve()), status.st_size, status.st_mtime_ns
