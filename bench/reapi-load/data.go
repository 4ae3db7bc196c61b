// Test data: blobs that no server has seen (fresh, for uploads) and blobs that
// are the same in every run (deterministic, uploaded once per server and then
// read or looked up), with their SHA-256 digests computed before any timing.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	mathrand "math/rand/v2"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

type blob struct {
	digest *repb.Digest
	data   []byte
}

func digestOf(data []byte) *repb.Digest {
	sum := sha256.Sum256(data)
	return &repb.Digest{Hash: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data))}
}

// randomBytes fills n bytes from a ChaCha8 stream: fast, so generating test
// data stays cheap next to the work being measured.
func randomBytes(source *mathrand.ChaCha8, n int) []byte {
	data := make([]byte, n)
	_, _ = source.Read(data)
	return data
}

func freshSource() *mathrand.ChaCha8 {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	return mathrand.NewChaCha8(seed)
}

func seededSource(name string) *mathrand.ChaCha8 {
	return mathrand.NewChaCha8(sha256.Sum256([]byte("granary bench v1: " + name)))
}

// blobsOf cuts count blobs of sizeBytes each from one allocation.
func blobsOf(source *mathrand.ChaCha8, count, sizeBytes int) []blob {
	all := randomBytes(source, count*sizeBytes)
	blobs := make([]blob, count)
	for i := range blobs {
		data := all[i*sizeBytes : (i+1)*sizeBytes]
		blobs[i] = blob{digest: digestOf(data), data: data}
	}
	return blobs
}

// absentDigest names a blob no server holds.
func absentDigest(source *mathrand.ChaCha8, sizeBytes int64) *repb.Digest {
	var hash [32]byte
	_, _ = source.Read(hash[:])
	return &repb.Digest{Hash: hex.EncodeToString(hash[:]), SizeBytes: sizeBytes}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
