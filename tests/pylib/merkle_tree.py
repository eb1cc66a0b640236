# merkle_tree.py: content ids and chunk layers of wire v3 (schemas/protocol.md, "Content ids and chunk hashes"),
# written from the spec with hashlib alone, independent of common/content_hash.cpp, so tests can check the C++
# against it. Also the test vectors' inputs (vector_bytes), whose ids protocol.md lists.
# Invariants: the cid never depends on a chunk size; every chunk layer, padded with pad_hash(h), folds to the cid.
import hashlib

BLOCK_SIZE = 16384                   # the leaves hash blocks of this many bytes; the last one as it is
MIN_CHUNK_SIZE = 16384
MAX_CHUNK_SIZE = 16 * 1024 * 1024
ZERO_HASH = bytes(32)                # a padding leaf, and the id of the empty file


def sha256(data):
    return hashlib.sha256(data).digest()


def pad_hash(height):
    """The hash of a subtree of `height` whose leaves are all padding: pad_0 = 32 zero bytes,
    pad_{h+1} = SHA-256(pad_h || pad_h)."""
    h = ZERO_HASH
    for _ in range(height):
        h = sha256(h + h)
    return h


def _log2(n):
    """log2 of a power of two."""
    assert n > 0 and n & (n - 1) == 0, n
    return n.bit_length() - 1


def _pow2_at_least(n):
    """The smallest power of two >= n (n >= 1)."""
    p = 1
    while p < n:
        p *= 2
    return p


def leaves(data):
    """SHA-256 of each 16 KiB block of `data`, the last block as it is (not padded); [] for no bytes."""
    return [sha256(data[at:at + BLOCK_SIZE]) for at in range(0, len(data), BLOCK_SIZE)]


def fold(nodes, height=0):
    """The root over `nodes` (at `height` in the tree), padded with pad_hash(height) to a power of two; each
    parent is SHA-256 of its two children's 32 bytes."""
    assert nodes, "nothing to fold"
    level = list(nodes) + [pad_hash(height)] * (_pow2_at_least(len(nodes)) - len(nodes))
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def cid_of(data):
    """The content id of `data` (bytes) as 32 bytes: the Merkle root over its 16 KiB blocks."""
    if not data:
        return ZERO_HASH
    return fold(leaves(data))


def cid_hex(data):
    return cid_of(data).hex()


def cid_of_file(path, read_size=8 << 20):
    """The content id of a file as 64 lowercase hex digits, read piece by piece (large files too): only the
    leaves are kept, 32 bytes per 16 KiB."""
    assert read_size % BLOCK_SIZE == 0
    found = []
    with open(path, "rb") as f:
        while True:
            data = f.read(read_size)
            if not data:
                break
            found.extend(leaves(data))  # every read but the last is a whole number of blocks
    return (fold(found) if found else ZERO_HASH).hex()


def check_chunk_size(chunk_size):
    if not (MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE and chunk_size & (chunk_size - 1) == 0):
        raise ValueError("chunk size %r is not a power of two from 16384 to 16777216" % (chunk_size,))


def tree_height(size):
    """log2 of the leaf count padded to a power of two: 0 for one block or none."""
    count = -(-size // BLOCK_SIZE)
    return _log2(_pow2_at_least(count)) if count else 0


def layer_height(size, chunk_size):
    """h = min(k, log2 P): the chunk's height (C = 2^k blocks), or the tree's when the file fits in one chunk."""
    check_chunk_size(chunk_size)
    return min(_log2(chunk_size // BLOCK_SIZE), tree_height(size))


def chunk_count(size, chunk_size):
    check_chunk_size(chunk_size)
    return -(-size // chunk_size)


def chunk_node(chunk, height):
    """The node of one chunk's bytes at `height`: its leaves padded with all-zero leaf hashes up to 2^height."""
    found = leaves(chunk)
    assert 0 < len(found) <= 1 << height, (len(found), height)
    level = found + [ZERO_HASH] * ((1 << height) - len(found))
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def chunk_layer(data, chunk_size):
    """The chunk layer of `data` for `chunk_size`: one 32-byte node per chunk ([] for no bytes)."""
    h = layer_height(len(data), chunk_size)
    return [chunk_node(data[at:at + chunk_size], h) for at in range(0, len(data), chunk_size)]


def layer_root(layer, height):
    """The cid a chunk layer at `height` folds up to (padded with pad_hash(height)); 32 zero bytes when empty."""
    return fold(layer, height) if layer else ZERO_HASH


# ---- test vectors (schemas/protocol.md lists their ids) ----

MIB = 1024 * 1024

# name -> length in bytes; protocol.md's table uses these names.
VECTOR_SIZES = {
    "empty": 0,
    "1 byte": 1,
    "16 KiB": BLOCK_SIZE,
    "16 KiB + 1": BLOCK_SIZE + 1,
    "1 MiB + 1": MIB + 1,
    "3 chunks": 3 * MIB - 1,  # three chunks at C = 1 MiB, the last one a byte short
}


def pattern_bytes(length):
    """Byte i is (i * 7 + 3) mod 251. The period, 251, is prime: no two 16 KiB blocks of a vector are equal,
    so a tree that swaps, repeats or drops a leaf gets another id."""
    period = bytes((i * 7 + 3) % 251 for i in range(251))
    return (period * (length // 251 + 1))[:length]


def vector_bytes(name):
    """The bytes of the test vector `name` (a key of VECTOR_SIZES)."""
    return pattern_bytes(VECTOR_SIZES[name])
