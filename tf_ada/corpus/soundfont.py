"""A minimal SoundFont 2 (SF2.04) writer and the Salamander piano SoundFont built from npm samples.

The SoundFont holds one preset (bank 0, program 0) with one instrument whose zones map each
(key range, velocity range) to one mono 16-bit sample. Structure written (SF2.04 spec, sec. 5-8):

  RIFF 'sfbk'
    LIST 'INFO': ifil (2.04), isng, INAM, ICOP
    LIST 'sdta': smpl (int16 samples, each followed by 46 zero samples)
    LIST 'pdta': phdr pbag pmod pgen inst ibag imod igen shdr (each with its terminal record)
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import struct
from typing import Sequence

import numpy as np

# generator operators (SF2.04 sec. 8.1.2)
GEN_INITIAL_FILTER_FC = 8
GEN_RELEASE_VOL_ENV = 38
GEN_KEY_RANGE = 43
GEN_VEL_RANGE = 44
GEN_INITIAL_ATTENUATION = 48
GEN_INSTRUMENT = 41
GEN_SAMPLE_ID = 53
GEN_SAMPLE_MODES = 54
GEN_OVERRIDING_ROOT_KEY = 58

# FluidSynth's (and the spec's, sec. 8.4) default modulators that map note-on velocity to
# attenuation and to filter cutoff. Our velocity layers already carry the dynamics, so each
# zone overrides both with amount 0 (an identical modulator in a zone replaces the default).
MOD_VELOCITY_TO_ATTENUATION = (0x0502, GEN_INITIAL_ATTENUATION, 0x0000, 0)
MOD_VELOCITY_TO_FILTER = (0x0102, GEN_INITIAL_FILTER_FC, 0x0000, 0)


@dataclasses.dataclass(frozen=True)
class Zone:
    """One sample mapped to keys [key_lo, key_hi] and velocities [vel_lo, vel_hi]."""
    samples: np.ndarray  # int16 [n]
    sample_rate: int
    root_key: int
    key_lo: int
    key_hi: int
    vel_lo: int = 0
    vel_hi: int = 127
    name: str = "sample"


def _chunk(tag: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


def _list(tag: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", tag + b"".join(chunks))


def _name(text: str) -> bytes:
    return text.encode("ascii", "replace")[:19].ljust(20, b"\0")


def _zstr(text: str) -> bytes:
    data = text.encode("ascii", "replace") + b"\0"
    return data + (b"\0" if len(data) % 2 else b"")


def _gen(oper: int, amount: int) -> bytes:
    return struct.pack("<Hh", oper, amount)


def _gen_range(oper: int, lo: int, hi: int) -> bytes:
    return struct.pack("<HBB", oper, lo, hi)


def timecents(seconds: float) -> int:
    return int(round(1200 * math.log2(seconds)))


def write_sf2(path: str, zones: Sequence[Zone], name: str = "tf-ada piano", copyright_: str = "",
              release_seconds: float = 0.25) -> str:
    """Writes a one-preset SoundFont; returns the file's sha256.

    Args:
      path: output .sf2 file.
      zones: the instrument's zones (each its own sample).
      release_seconds: volume-envelope release after note-off (a short, natural damper release).
    """
    smpl = bytearray()
    shdr = bytearray()
    starts = []
    for i, z in enumerate(zones):
        data = np.asarray(z.samples, np.int16)
        start = len(smpl) // 2
        smpl += data.tobytes() + b"\0\0" * 46
        starts.append(start)
        shdr += _name(f"{z.name}"[:19]) + struct.pack(
            "<IIIIIBbHH", start, start + data.size, start, start + data.size, z.sample_rate, z.root_key, 0, 0, 1)
    shdr += _name("EOS") + struct.pack("<IIIIIBbHH", 0, 0, 0, 0, 0, 0, 0, 0, 0)

    # instrument: one zone per sample, each with the modulator overrides
    ibag, imod, igen = bytearray(), bytearray(), bytearray()
    n_gen = n_mod = 0
    for i, z in enumerate(zones):
        ibag += struct.pack("<HH", n_gen, n_mod)
        for src, dest, amt_src, trans in (MOD_VELOCITY_TO_ATTENUATION, MOD_VELOCITY_TO_FILTER):
            imod += struct.pack("<HHhHH", src, dest, 0, amt_src, trans)
            n_mod += 1
        gens = [_gen_range(GEN_KEY_RANGE, z.key_lo, z.key_hi), _gen_range(GEN_VEL_RANGE, z.vel_lo, z.vel_hi),
                _gen(GEN_RELEASE_VOL_ENV, timecents(release_seconds)), _gen(GEN_SAMPLE_MODES, 0),
                _gen(GEN_OVERRIDING_ROOT_KEY, z.root_key), _gen(GEN_SAMPLE_ID, i)]
        igen += b"".join(gens)
        n_gen += len(gens)
    ibag += struct.pack("<HH", n_gen, n_mod)
    imod += struct.pack("<HHhHH", 0, 0, 0, 0, 0)
    igen += _gen(0, 0)
    inst = _name("piano") + struct.pack("<H", 0) + _name("EOI") + struct.pack("<H", len(zones))

    phdr = _name("piano") + struct.pack("<HHHIII", 0, 0, 0, 0, 0, 0)
    phdr += _name("EOP") + struct.pack("<HHHIII", 0, 0, 1, 0, 0, 0)
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)
    pmod = struct.pack("<HHhHH", 0, 0, 0, 0, 0)
    pgen = _gen(GEN_INSTRUMENT, 0) + _gen(0, 0)

    info = _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 4)), _chunk(b"isng", _zstr("EMU8000")),
                 _chunk(b"INAM", _zstr(name)), *([_chunk(b"ICOP", _zstr(copyright_))] if copyright_ else []))
    sdta = _list(b"sdta", _chunk(b"smpl", bytes(smpl)))
    pdta = _list(b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", pmod),
                 _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", bytes(ibag)),
                 _chunk(b"imod", bytes(imod)), _chunk(b"igen", bytes(igen)), _chunk(b"shdr", bytes(shdr)))
    blob = _chunk(b"RIFF", b"sfbk" + info + sdta + pdta)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return hashlib.sha256(blob).hexdigest()


def read_sf2_zones(path: str) -> list[dict]:
    """Parses what `write_sf2` writes back into zone dicts (a reader for tests and inspection)."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:4] != b"RIFF" or blob[8:12] != b"sfbk":
        raise ValueError(f"{path}: not a SoundFont (RIFF sfbk) file")
    chunks = {}

    def walk(data, offset, end):
        while offset < end:
            tag, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
            body = offset + 8
            if tag == b"LIST":
                walk(data, body + 4, body + size)
            else:
                chunks[tag.decode()] = data[body:body + size]
            offset = body + size + (size % 2)

    walk(blob, 12, len(blob))
    smpl = np.frombuffer(chunks["smpl"], np.int16)
    shdr = [struct.unpack("<20sIIIIIBbHH", chunks["shdr"][i:i + 46]) for i in range(0, len(chunks["shdr"]), 46)]
    ibag = [struct.unpack("<HH", chunks["ibag"][i:i + 4]) for i in range(0, len(chunks["ibag"]), 4)]
    igen = [struct.unpack("<HBB", chunks["igen"][i:i + 4]) for i in range(0, len(chunks["igen"]), 4)]
    zones = []
    for b in range(len(ibag) - 1):
        z = {}
        for g in range(ibag[b][0], ibag[b + 1][0]):
            oper, lo, hi = igen[g]
            if oper in (GEN_KEY_RANGE, GEN_VEL_RANGE):
                z["key" if oper == GEN_KEY_RANGE else "vel"] = (lo, hi)
            elif oper == GEN_SAMPLE_ID:
                h = shdr[lo | hi << 8]
                z["samples"] = smpl[h[1]:h[2]]
                z["sample_rate"] = h[5]
                z["root_key"] = h[6]
        zones.append(z)
    return zones
