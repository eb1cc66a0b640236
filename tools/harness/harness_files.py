# harness_files.py: the seeders' share folders: deterministic file contents from (seed, content key, size),
# and the content id every holder must publish: the Merkle root over 16 KiB blocks (schemas/protocol.md,
# "Content ids and chunk hashes"). Written from protocol.md here, so the harness checks the peers independently.
import hashlib
import os
import random

KiB = 1024
MiB = 1024 * KiB
BLOCK_SIZE = 16 * KiB
ZERO_HASH = b"\0" * 32


def parse_size(text):
    """'0', '1500', '12K', '3M', '1.5M' (binary units) -> bytes."""
    t = str(text).strip().upper()
    mult = 1
    if t.endswith("K"):
        mult, t = KiB, t[:-1]
    elif t.endswith("M"):
        mult, t = MiB, t[:-1]
    elif t.endswith("G"):
        mult, t = 1024 * MiB, t[:-1]
    value = int(float(t) * mult)
    if value < 0:
        raise ValueError("a size cannot be negative: %r" % text)
    return value


def content_bytes(seed, key, size):
    """The bytes of content `key`: the same (seed, key, size) always gives the same bytes."""
    if size == 0:
        return b""
    return random.Random("%s/%s/%d" % (seed, key, size)).randbytes(size)


def block_leaves(data):
    """SHA-256 of each 16 KiB block, the last one as it is (not padded)."""
    return [hashlib.sha256(data[i:i + BLOCK_SIZE]).digest() for i in range(0, len(data), BLOCK_SIZE)]


def merkle_root(leaves):
    """protocol.md's tree: leaves padded with zero hashes to a power of two, parent = SHA-256(left || right);
    32 zero bytes for no leaves (the empty file)."""
    if not leaves:
        return ZERO_HASH
    width = 1
    while width < len(leaves):
        width *= 2
    level = list(leaves) + [ZERO_HASH] * (width - len(leaves))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


class Content:
    """One content (a byte string) and the index entry its holders must publish for it."""

    def __init__(self, key, data, chunk_size):
        self.key = key
        self.size = len(data)
        self.chunk_size = chunk_size
        self.cid = merkle_root(block_leaves(data)).hex()

    def __repr__(self):
        return "Content(%s, %d bytes, %s)" % (self.key, self.size, self.cid[:12])


def fake_cid(digest, size):
    """A content id for metadata-only entries (nobody serves them): `digest`'s hex, or the empty file's id (64
    zeros) for size 0, the only id the broker takes for an empty file (schemas/protocol.md)."""
    return "0" * 64 if size == 0 else digest.hexdigest()


def write_shares(root_dir, peers, files, seed, chunk_size):
    """Writes every FileSpec into <root_dir>/<peer>/share/ and returns {content key: Content}.
    Files with the same content key hold the same bytes (hard links would share inode state; copies do not)."""
    contents = {}
    data_of = {}
    for f in files:
        if f.content not in data_of:
            data_of[f.content] = content_bytes(seed, f.content, f.size)
            contents[f.content] = Content(f.content, data_of[f.content], chunk_size)
        elif len(data_of[f.content]) != f.size:
            raise ValueError("content %r is declared with two sizes (%d and %d)"
                             % (f.content, len(data_of[f.content]), f.size))
    for peer in peers:
        os.makedirs(os.path.join(root_dir, peer, "share"), exist_ok=True)
    for f in files:
        path = os.path.join(root_dir, f.peer, "share", f.name)
        with open(path, "wb") as out:
            out.write(data_of[f.content])
    return contents


def cid_file(path, read_size=64 * BLOCK_SIZE):
    """The content id of a file on disk (hex), read in whole blocks: only the leaves are kept."""
    leaves = []
    with open(path, "rb") as f:
        while True:
            data = f.read(read_size)
            if not data:
                return merkle_root(leaves).hex()
            leaves.extend(block_leaves(data))  # every read but the last is a whole number of blocks
