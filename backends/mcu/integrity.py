"""What the firmware checks in flash at boot (firmware/runtime/ajpq_verify.h): the list of
the model's const arrays ("blobs") and Huffman tables that ajpq_weights.c carries, and the
CRC-32 of them that ajpq_model.h carries as AJPQ_MODEL_WEIGHTS_CRC.

The CRC reads, in order, the bytes of every blob, then each table's num_symbols (u16
little-endian), max_length and lookup_bits (``huffman.table_shape``): the same walk as
``ajpq_model_weights_crc`` on the device, so a flipped bit anywhere in them changes it.
"""

import zlib
from dataclasses import dataclass, field

import numpy as np

NUMPY_TYPES = {
    "uint8_t": "<u1",
    "int8_t": "<i1",
    "int16_t": "<i2",
    "uint16_t": "<u2",
    "int32_t": "<i4",
}


def blob_bytes(ctype: str, values: np.ndarray | list[int]) -> bytes:
    """The bytes a C array of ``values`` holds on a little-endian MCU (one 0 when empty, as
    the emitted array then has one entry)."""
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        flat = np.zeros(1, dtype=np.int64)
    return flat.astype(NUMPY_TYPES[ctype]).tobytes()


@dataclass
class Integrity:
    """The blobs and tables of one model, in emission order."""

    blobs: list[tuple[str, bytes]] = field(default_factory=list)
    tables: list[tuple[str, bytes]] = field(default_factory=list)

    def add_blob(self, name: str, ctype: str, values: np.ndarray | list[int]) -> None:
        self.blobs.append((name, blob_bytes(ctype, values)))

    def add_table(self, name: str, shape: bytes) -> None:
        self.tables.append((name, shape))

    def crc(self) -> int:
        """AJPQ_MODEL_WEIGHTS_CRC."""
        crc = 0
        for _, data in self.blobs:
            crc = zlib.crc32(data, crc)
        for _, shape in self.tables:
            crc = zlib.crc32(shape, crc)
        return crc

    def list_bytes(self) -> int:
        """Flash the two lists and their counts take on a 32-bit MCU (a pointer and a size per
        blob, a pointer per table; one entry when empty)."""
        return 8 * max(1, len(self.blobs)) + 4 * max(1, len(self.tables)) + 8

    def c_source(self) -> str:
        """The lists ajpq_verify.c walks, for the end of ajpq_weights.c."""
        blobs = "".join(f"    {{{name}, sizeof {name}}},\n" for name, _ in self.blobs)
        tables = "".join(f"    &{name},\n" for name, _ in self.tables)
        blobs, tables = blobs or "    {0, 0},\n", tables or "    0,\n"  # C has no empty arrays
        return (
            "\n/* What the firmware checks at boot (ajpq_verify.h). */\n"
            f"const ajpq_blob_t ajpq_model_blobs[] = {{\n{blobs}}};\n"
            f"const uint32_t ajpq_model_blob_count = {len(self.blobs)}u;\n"
            "const ajpq_huffman_table_t *const ajpq_model_tables[] = {\n"
            f"{tables}}};\n"
            f"const uint32_t ajpq_model_table_count = {len(self.tables)}u;\n"
        )
