"""Synthetic accounts for benchmarks: valid-looking, unique, and no one's real data."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

# Mobile prefixes of the five networks (2018 numbering); 7 more digits make a number.
MOBILE_PREFIXES = (
    "090",
    "093",
    "070",
    "079",
    "077",
    "076",
    "078",  # MobiFone
    "091",
    "094",
    "088",
    "083",
    "084",
    "085",
    "081",
    "082",  # VinaPhone
    "096",
    "097",
    "098",
    "086",
    "032",
    "033",
    "034",
    "035",
    "036",
    "037",
    "038",
    "039",  # Viettel
    "092",
    "056",
    "058",  # Vietnamobile
    "099",
    "059",  # Gmobile
)
NAMES = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thị Dung", "Đặng Minh Hải")


def code(index: int) -> str:
    return f"{index:010d}"


def phone(index: int) -> str:
    """A distinct national mobile number for each index below 3.3 million per prefix set."""
    prefix = MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]
    return f"{prefix}{index // len(MOBILE_PREFIXES):07d}"


def rows(count: int, start: int = 0) -> Iterator[list[str]]:
    for index in range(start, start + count):
        yield [code(index), NAMES[index % len(NAMES)], phone(index), "", "1"]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ma_so_bhxh", "ho_ten", "so_dien_thoai", "email", "da_dang_ky_gddt"])
        writer.writerows(rows(count))
