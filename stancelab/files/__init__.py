"""Small file helpers shared by every command: atomic writes, one-writer locks, line, JSONL
and CSV reading, the walk of an input folder, checksums.

Writes go to a temporary file in the destination folder and are renamed into place, so a
crash or an error never leaves a half-written file behind and never clobbers the old one.
``exclusive_lock`` refuses a second writer of the same output at once (``shared_lock`` is
its readers' side),
``refuse_input_as_output`` an output that would replace an input, ``refuse_existing`` one
that exists (unless ``--overwrite``), and ``check_output_path`` one that cannot be written.
Writing lives in ``_writing`` (its locks in ``_locks``), reading in ``_reading``; import from
here.
"""

from stancelab.errors import InputError
from stancelab.files._locks import (
    exclusive_lock,
    lock_file,
    output_lock,
    process_alive,
    shared_lock,
)
from stancelab.files._reading import (
    CSV_FIELD_LIMIT,
    NOT_UTF8_ADVICE,
    FolderFiles,
    checksum_path,
    decode_text,
    iter_csv,
    iter_jsonl,
    not_text,
    read_json_object,
    read_text,
    sha256_digest,
    sha256_file,
    walk_folder,
)
from stancelab.files._writing import (
    STALE_SECONDS,
    TABULAR,
    atomic_open,
    check_output_path,
    copy_linked,
    current_umask,
    dumps_jsonl_row,
    followed,
    kept_mode,
    move_into_place,
    parents_made,
    refuse_existing,
    refuse_input_as_output,
    remove_path,
    remove_stale_temporaries,
    restore_replaced,
    temporary_folder,
    write_json,
    write_jsonl,
    written_whole,
)

__all__ = [
    "InputError",
    "atomic_open",
    "STALE_SECONDS",
    "TABULAR",
    "remove_stale_temporaries",
    "exclusive_lock",
    "shared_lock",
    "lock_file",
    "written_whole",
    "output_lock",
    "process_alive",
    "followed",
    "refuse_input_as_output",
    "check_output_path",
    "refuse_existing",
    "temporary_folder",
    "move_into_place",
    "parents_made",
    "copy_linked",
    "restore_replaced",
    "remove_path",
    "current_umask",
    "kept_mode",
    "dumps_jsonl_row",
    "write_jsonl",
    "write_json",
    "read_text",
    "decode_text",
    "not_text",
    "NOT_UTF8_ADVICE",
    "CSV_FIELD_LIMIT",
    "iter_csv",
    "iter_jsonl",
    "read_json_object",
    "checksum_path",
    "sha256_file",
    "sha256_digest",
    "FolderFiles",
    "walk_folder",
]
