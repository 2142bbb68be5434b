"""Checking URDF and MJCF files from untrusted sources before any XML reaches MuJoCo.

MuJoCo's own XML reader follows ``<include file>``, ``meshdir`` and ``<mesh file>`` wherever
they point, so a downloaded model could read files outside its folder. Every model file is
first parsed here with defusedxml (DTDs, entity declarations and external references are
refused, which stops "billion laughs" and XXE), and every file it references, through any
depth of ``<include>``, must resolve inside the model's folder (:func:`resolve_inside`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from physforge.errors import InputFileError
from physforge.world.paths import resolve_inside

#: Largest URDF/MJCF file parsed, bytes (real robot descriptions are well under 1 MB).
MAX_XML_BYTES = 16 * 1024 * 1024
#: Most files one model may pull in through ``<include>`` (guards include cycles and fan-out).
MAX_INCLUDED_FILES = 64

# MJCF attributes that name a file, per element; compiler directories are handled apart.
_MJCF_FILE_ATTRIBUTES = {
    "include": ("file",),
    "mesh": ("file",),
    "hfield": ("file",),
    "skin": ("file",),
    "model": ("file",),
    "texture": ("file", "fileright", "fileleft", "fileup", "filedown", "filefront", "fileback"),
}
_MJCF_DIRECTORIES = {"meshdir": ("mesh", "skin"), "texturedir": ("texture",), "assetdir": ("mesh", "skin", "texture", "hfield")}


def parse_untrusted_xml(path: str | Path, *, max_bytes: int = MAX_XML_BYTES) -> ET.Element:
    """The root element of an XML file from an untrusted source; entities and DTDs are refused."""
    import defusedxml
    import defusedxml.ElementTree as SafeET

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    if path.stat().st_size > max_bytes:
        raise InputFileError(path, f"larger than {max_bytes} bytes; refusing to parse")
    try:
        return SafeET.parse(str(path), forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except defusedxml.DefusedXmlException as err:
        raise InputFileError(path, f"refused: the XML declares a DTD or entities ({type(err).__name__}); "
                             "remove the <!DOCTYPE>/<!ENTITY> declarations") from None
    except ET.ParseError as err:
        raise InputFileError(path, f"not well-formed XML: {err}") from None


def check_model_file(path: str | Path) -> list[Path]:
    """Refuse an MJCF or URDF file that is unsafe to hand to MuJoCo's parser.

    Parses ``path`` and every file it includes with defusedxml and checks that each file it
    names (includes, meshes, textures, height fields, skins, compiler directories) stays inside
    ``path``'s folder. Returns the XML files read (``path`` first). Raises InputFileError naming
    the file and the reference.
    """
    path = Path(path)
    folder = path.parent.resolve()
    seen: list[Path] = []
    pending = [path.resolve()]
    while pending:
        current = pending.pop()
        if current in seen:
            raise InputFileError(current, "is included more than once (an <include> cycle?); refused")
        seen.append(current)
        if len(seen) > MAX_INCLUDED_FILES:
            raise InputFileError(path, f"includes more than {MAX_INCLUDED_FILES} files; refused")
        root = parse_untrusted_xml(current)
        if root.tag == "robot":
            _check_urdf(current, root, folder)
        else:
            pending.extend(_check_mjcf(current, root, folder))
    return seen


def _check_urdf(path: Path, root: ET.Element, folder: Path) -> None:
    # MuJoCo reads a <mujoco><compiler meshdir=...> extension inside a URDF as well.
    for compiler in root.iter("compiler"):
        for attribute in _MJCF_DIRECTORIES:
            value = compiler.get(attribute)
            if value is not None:
                _inside(path, folder, value or ".", f"<compiler {attribute}>")
    for mesh in root.iter("mesh"):
        filename = mesh.get("filename")
        if filename is None:
            continue
        # MuJoCo keeps only a URDF mesh's file name, but other tools (and our importers) follow
        # the whole path, so a reference out of the folder is refused here as well.
        reference = filename[len("package://"):] if filename.startswith("package://") else filename
        _inside(path, folder, reference, "mesh filename")


def _check_mjcf(path: Path, root: ET.Element, folder: Path) -> list[Path]:
    directories: dict[str, Path] = {}
    for compiler in root.iter("compiler"):
        for attribute in _MJCF_DIRECTORIES:
            value = compiler.get(attribute)
            if value is not None:
                directories[attribute] = _inside(path, folder, value or ".", f"<compiler {attribute}>")
    includes = []
    for tag, attributes in _MJCF_FILE_ATTRIBUTES.items():
        for element in root.iter(tag):
            for attribute in attributes:
                value = element.get(attribute)
                if value is None:
                    continue
                base = folder
                for directory, tags in _MJCF_DIRECTORIES.items():
                    if tag in tags and directory in directories:
                        base = directories[directory]
                        if directory != "assetdir":
                            break
                target = _inside(path, base, value, f"<{tag} {attribute}>")
                if target != folder and folder not in target.parents:
                    raise InputFileError(path, f"<{tag} {attribute}='{value}'> resolves outside {folder}; refused")
                if tag == "include":
                    includes.append(target)
    return includes


def _inside(path: Path, base: Path, reference: str, where: str) -> Path:
    try:
        return resolve_inside(base, reference, must_exist=False)
    except InputFileError as err:
        raise InputFileError(path, f"{where}='{reference}': {err}") from None
