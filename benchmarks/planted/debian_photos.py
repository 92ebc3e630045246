"""Real high-resolution photographs from Debian wallpaper packages: the planted benchmark's ``photos-*`` splits.

qa's method was tuned on photos shipped inside Python packages (:mod:`benchmarks.planted.cases`); these splits
use photographs it never saw, fetched from Debian's archive by this module (nothing is committed):

    .venv/bin/python -m benchmarks.planted.debian_photos [--dest DIR]

runs ``apt-get download`` for :data:`PACKAGES` and unpacks them with ``dpkg-deb -x`` into ``DIR`` (default
``$QA_PLANTED_PHOTOS``, else ``~/.cache/qa/planted_photos``). Only photographs are listed (the packages also hold
illustrations and renders, which are not used). Licences (from each package's ``copyright`` file):
lomiri-wallpapers: CC-BY-4.0 / CC-BY-SA-4.0 per photo; mate-backgrounds: GPL-2+; plasma-workspace-wallpapers:
GPL-2+.

Splits (no package is shared, so no photographer, camera or scene is):
- ``photos-tune``: the photos of lomiri-wallpapers-16.04/-20.04 and mate-backgrounds (26 photos, one crop each);
  every choice of the method may be made here.
- ``photos-heldout``: the photos of plasma-workspace-wallpapers (10 photos, two crops each); run once, after the
  method is frozen, never used to choose anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

#: the Debian packages the photos come from (bookworm versions at the time of writing; any version with the
#: listed files works)
PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds", "plasma-workspace-wallpapers")
_LOMIRI = "lomiri-wallpapers-16.04/usr/share/backgrounds/"
_MATE = "mate-backgrounds/usr/share/backgrounds/mate/nature/"
_PLASMA = "plasma-workspace-wallpapers/usr/share/wallpapers/{}/contents/images/{}"
#: photo name -> path under the unpack folder
PHOTOS: dict[str, str] = {
    **{n.split("_by_")[0].lower(): _LOMIRI + n for n in (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg")},
    "kleiber": "lomiri-wallpapers-20.04/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
    **{n.lower(): f"{_MATE}{n}.jpg" for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")},
    **{n.lower(): _PLASMA.format(n, "2560x1600.jpg") for n in (
        "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut",
        "Path", "summer_1am")},
}
PHOTO_SPLITS: dict[str, dict[str, object]] = {
    "photos-tune": {"photos": [p for p, path in PHOTOS.items() if not path.startswith("plasma")], "crops": 1,
                    "seed": 2000},
    "photos-heldout": {"photos": [p for p, path in PHOTOS.items() if path.startswith("plasma")], "crops": 2,
                       "seed": 3000},
}
#: photos are resampled (area average) so that their short side is this many pixels before cropping: a 256-px
#: tile then holds a scene's structure, and the source JPEG's own artefacts are averaged away
SHORT_SIDE = 1024


def photo_dir() -> Path:
    """Where the unpacked packages are: ``$QA_PLANTED_PHOTOS`` or ``~/.cache/qa/planted_photos``."""
    return Path(os.environ.get("QA_PLANTED_PHOTOS", "~/.cache/qa/planted_photos")).expanduser()


def missing_photos(root: Path | None = None) -> list[str]:
    """Names of the photos not present under ``root`` (default :func:`photo_dir`)."""
    root = photo_dir() if root is None else root
    return [n for n, p in PHOTOS.items() if not (root / p).is_file()]


def load(name: str, root: Path | None = None) -> np.ndarray:
    """Photo ``name`` as float32 (H, W, 3) in [0, 1], area-resampled to a short side of :data:`SHORT_SIDE`."""
    root = photo_dir() if root is None else root
    path = root / PHOTOS[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m benchmarks.planted.debian_photos --dest "
                                f"{root}` (fetches {', '.join(PACKAGES)} from Debian's archive)")
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        w, h = rgb.size
        f = SHORT_SIDE / min(w, h)
        if f < 1:
            rgb = rgb.resize((round(w * f), round(h * f)), Image.Resampling.BOX)
        return np.asarray(rgb, dtype=np.float32) / 255.0


def fetch(dest: Path) -> None:
    """``apt-get download`` :data:`PACKAGES` into a temporary folder and ``dpkg-deb -x`` each into ``dest/NAME``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # apt's download user must be able to write there
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            name = deb.name.split("_")[0]
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest / name)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=None, help="unpack folder (default: $QA_PLANTED_PHOTOS or "
                                                            "~/.cache/qa/planted_photos)")
    args = ap.parse_args(argv)
    dest = args.dest or photo_dir()
    if missing_photos(dest):
        fetch(dest)
    missing = missing_photos(dest)
    if missing:
        print(f"still missing after the fetch: {missing}", file=sys.stderr)
        return 1
    print(f"{len(PHOTOS)} photos under {dest}; set QA_PLANTED_PHOTOS={dest} for the photos-* splits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
