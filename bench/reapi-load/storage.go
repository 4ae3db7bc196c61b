// The storage figures: BatchUpdateBlobs, FindMissingBlobs, BatchReadBlobs,
// ByteStream writes and reads of a 64 MiB blob, and GetActionResult. Data is
// generated and hashed before the clock starts; only the calls are timed.
package main

import (
	"context"
	"fmt"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc/codes"
)

const (
	smallBlobBytes = 4 << 10
	largeBlobBytes = 64 << 20
	// presentBlobs is the size of the deterministic set that FindMissingBlobs
	// and BatchReadBlobs look up and read; uploaded once per server.
	presentBlobs = 5000
	// findMissingDigests per request: the present set plus as many absent digests.
	findMissingDigests = 2 * presentBlobs
	// batchUpdatePoolBlobs bounds the fresh blobs prepared for one run (80 MiB of
	// 4 KiB blobs); a run ends at its deadline or when they are all sent.
	batchUpdatePoolBlobs = 20000
)

func presentSet() []blob {
	return blobsOf(seededSource("present 4 KiB blobs"), presentBlobs, smallBlobBytes)
}

func batchUpdateFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	blobs := blobsOf(freshSource(), batchUpdatePoolBlobs, smallBlobBytes)
	requests := make([]*repb.BatchUpdateBlobsRequest, 0, len(blobs)/uploadBatchBlobs)
	for start := 0; start+uploadBatchBlobs <= len(blobs); start += uploadBatchBlobs {
		requests = append(requests, batchUpdateRequest(s.target.instance, blobs[start:start+uploadBatchBlobs]))
	}
	m := o.newMeter()
	var completed int
	concurrency := o.concurrencyOr(1)
	err := m.time(func() (err error) {
		completed, err = untilDeadline(time.Now().Add(o.duration), concurrency, len(requests), func(_, job int) error {
			return s.sendBatchUpdate(ctx, requests[job])
		})
		return err
	})
	blobCount := float64(completed * uploadBatchBlobs)
	return m.measured(measurement{
		Unit: "blobs/s", Value: rate(blobCount, m),
		Detail: fmt.Sprintf("%d requests of %d fresh 4 KiB blobs, %d in flight", completed, uploadBatchBlobs, concurrency),
	}), err
}

func findMissingFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	present := presentSet()
	if err := s.ensurePresent(ctx, present); err != nil {
		return measurement{}, err
	}
	// A few requests, each the whole present set interleaved with fresh absent digests.
	source := freshSource()
	requests := make([]*repb.FindMissingBlobsRequest, 8)
	for i := range requests {
		request := &repb.FindMissingBlobsRequest{InstanceName: s.target.instance}
		for j := range present {
			b := present[(j*7+i*1237)%len(present)]
			request.BlobDigests = append(request.BlobDigests, b.digest, absentDigest(source, smallBlobBytes))
		}
		requests[i] = request
	}
	m := o.newMeter()
	var completed int
	concurrency := o.concurrencyOr(1)
	err := m.time(func() (err error) {
		completed, err = untilDeadline(time.Now().Add(o.duration), concurrency, 1<<30, func(_, job int) error {
			request := requests[job%len(requests)]
			response, err := s.cas.FindMissingBlobs(ctx, request)
			if err != nil {
				return fmt.Errorf("FindMissingBlobs: %w", err)
			}
			if len(response.MissingBlobDigests) != presentBlobs {
				return fmt.Errorf("FindMissingBlobs reported %d missing, expected %d", len(response.MissingBlobDigests), presentBlobs)
			}
			return nil
		})
		return err
	})
	return m.measured(measurement{
		Unit: "digests/s", Value: rate(float64(completed*findMissingDigests), m),
		Detail: fmt.Sprintf("%d requests of %d digests, half present, %d in flight", completed, findMissingDigests, concurrency),
	}), err
}

func batchReadFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	present := presentSet()
	if err := s.ensurePresent(ctx, present); err != nil {
		return measurement{}, err
	}
	requests := make([]*repb.BatchReadBlobsRequest, 0, len(present)/uploadBatchBlobs)
	for start := 0; start+uploadBatchBlobs <= len(present); start += uploadBatchBlobs {
		request := &repb.BatchReadBlobsRequest{InstanceName: s.target.instance}
		for _, b := range present[start : start+uploadBatchBlobs] {
			request.Digests = append(request.Digests, b.digest)
		}
		requests = append(requests, request)
	}
	m := o.newMeter()
	var completed int
	concurrency := o.concurrencyOr(1)
	err := m.time(func() (err error) {
		completed, err = untilDeadline(time.Now().Add(o.duration), concurrency, 1<<30, func(_, job int) error {
			response, err := s.cas.BatchReadBlobs(ctx, requests[job%len(requests)])
			if err != nil {
				return fmt.Errorf("BatchReadBlobs: %w", err)
			}
			if len(response.Responses) != uploadBatchBlobs {
				return fmt.Errorf("BatchReadBlobs answered %d of %d blobs", len(response.Responses), uploadBatchBlobs)
			}
			for _, r := range response.Responses {
				if r.Status.GetCode() != int32(codes.OK) || len(r.Data) != smallBlobBytes {
					return fmt.Errorf("BatchReadBlobs: blob %s: status %d, %d bytes", r.Digest.GetHash(), r.Status.GetCode(), len(r.Data))
				}
			}
			return nil
		})
		return err
	})
	return m.measured(measurement{
		Unit: "blobs/s", Value: rate(float64(completed*uploadBatchBlobs), m),
		Detail: fmt.Sprintf("%d requests of %d stored 4 KiB blobs, %d in flight", completed, uploadBatchBlobs, concurrency),
	}), err
}

// writeFigure uploads o.largeBlobs fresh 64 MiB blobs one after another; each
// differs from the last in its first bytes and is hashed before it is timed.
func writeFigure(ctx context.Context, s *session, o measureOptions, chunkBytes int) (measurement, error) {
	source := freshSource()
	data := randomBytes(source, largeBlobBytes)
	m := o.newMeter()
	for range o.largeBlobs {
		_, _ = source.Read(data[:32])
		b := blob{digest: digestOf(data), data: data}
		if err := m.time(func() error { return s.streamWrite(ctx, b, chunkBytes) }); err != nil {
			return measurement{}, err
		}
	}
	bytes := float64(o.largeBlobs * largeBlobBytes)
	return m.measured(measurement{
		Unit: "MB/s", Value: rate(bytes/1e6, m),
		Detail: fmt.Sprintf("%d fresh 64 MiB blobs in %d KiB messages, one at a time", o.largeBlobs, chunkBytes>>10),
	}), nil
}

func readFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	large := blob{data: randomBytes(seededSource("read 64 MiB blob"), largeBlobBytes)}
	large.digest = digestOf(large.data)
	if err := s.ensurePresent(ctx, []blob{large}); err != nil {
		return measurement{}, err
	}
	m := o.newMeter()
	for range o.largeBlobs {
		if err := m.time(func() error { return s.streamRead(ctx, large.digest) }); err != nil {
			return measurement{}, err
		}
	}
	bytes := float64(o.largeBlobs * largeBlobBytes)
	return m.measured(measurement{
		Unit: "MB/s", Value: rate(bytes/1e6, m),
		Detail: fmt.Sprintf("one stored 64 MiB blob read %d times, one at a time", o.largeBlobs),
	}), nil
}
