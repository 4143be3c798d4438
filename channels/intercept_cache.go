package channels

import (
	"bytes"
	"hash/maphash"
)

// frameCache remembers the frames one intercepted broadcast has built, so
// that subscribers with the same serializer, join_ref and payload share
// one. It is keyed by a hash of those; the key bytes are kept in one
// arena and compared on a hit, so a hash collision is a miss, never a
// wrong frame. It is reused from broadcast to broadcast (see
// interceptBufs), so steady-state lookups and inserts do not allocate.
type frameCache struct {
	seed    maphash.Seed
	entries map[uint64]frameCacheEntry
	arena   []byte
}

type frameCacheEntry struct {
	f          *Frame
	start, end int // the key in arena
}

// maxFrameCache bounds the distinct frames one broadcast remembers for
// sharing; beyond it, frames are still built but no longer remembered.
const maxFrameCache = 1024

// maxCacheArena is the largest key arena kept for the next broadcast.
const maxCacheArena = 1 << 20

// get returns the frame remembered for key.
func (c *frameCache) get(key []byte) (*Frame, uint64) {
	if c.entries == nil {
		c.seed = maphash.MakeSeed()
		c.entries = make(map[uint64]frameCacheEntry)
	}
	h := maphash.Bytes(c.seed, key)
	if e, ok := c.entries[h]; ok && bytes.Equal(c.arena[e.start:e.end], key) {
		return e.f, h
	}
	return nil, h
}

// put remembers f for key, whose hash get returned, unless the cache is
// full or the hash is taken.
func (c *frameCache) put(key []byte, h uint64, f *Frame) {
	if len(c.entries) >= maxFrameCache {
		return
	}
	if _, taken := c.entries[h]; taken {
		return
	}
	start := len(c.arena)
	c.arena = append(c.arena, key...)
	c.entries[h] = frameCacheEntry{f: f, start: start, end: len(c.arena)}
}

// reset forgets every frame and keeps the storage, unless the arena grew
// past maxCacheArena.
func (c *frameCache) reset() {
	clear(c.entries)
	c.arena = c.arena[:0]
	if cap(c.arena) > maxCacheArena {
		c.arena = nil
	}
}
