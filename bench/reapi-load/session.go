// A connection to one server under test with the REAPI clients the figures
// use, and the untimed helpers that put data in place before a measurement.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	bspb "google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type session struct {
	target     target
	connection *grpc.ClientConn
	cas        repb.ContentAddressableStorageClient
	byteStream bspb.ByteStreamClient
	actions    repb.ActionCacheClient
	execution  repb.ExecutionClient
}

func openSession(t target) (*session, error) {
	connection, err := dial(t)
	if err != nil {
		return nil, err
	}
	return &session{
		target:     t,
		connection: connection,
		cas:        repb.NewContentAddressableStorageClient(connection),
		byteStream: bspb.NewByteStreamClient(connection),
		actions:    repb.NewActionCacheClient(connection),
		execution:  repb.NewExecutionClient(connection),
	}, nil
}

func (s *session) close() { _ = s.connection.Close() }

// uploadBatchBlobs is the number of blobs per BatchUpdateBlobs request in
// setup and in the batch figures: 200 small blobs stay well under every
// server's batch size limit (4 MiB by default).
const uploadBatchBlobs = 200

// batchUpload uploads blobs with BatchUpdateBlobs and checks every status.
func (s *session) batchUpload(ctx context.Context, blobs []blob) error {
	for start := 0; start < len(blobs); start += uploadBatchBlobs {
		request := batchUpdateRequest(s.target.instance, blobs[start:min(start+uploadBatchBlobs, len(blobs))])
		if err := s.sendBatchUpdate(ctx, request); err != nil {
			return err
		}
	}
	return nil
}

func batchUpdateRequest(instance string, blobs []blob) *repb.BatchUpdateBlobsRequest {
	request := &repb.BatchUpdateBlobsRequest{InstanceName: instance}
	for _, b := range blobs {
		request.Requests = append(request.Requests, &repb.BatchUpdateBlobsRequest_Request{Digest: b.digest, Data: b.data})
	}
	return request
}

func (s *session) sendBatchUpdate(ctx context.Context, request *repb.BatchUpdateBlobsRequest) error {
	response, err := s.cas.BatchUpdateBlobs(ctx, request)
	if err != nil {
		return fmt.Errorf("BatchUpdateBlobs: %w", err)
	}
	if len(response.Responses) != len(request.Requests) {
		return fmt.Errorf("BatchUpdateBlobs answered %d of %d blobs", len(response.Responses), len(request.Requests))
	}
	for _, r := range response.Responses {
		if r.Status.GetCode() != int32(codes.OK) {
			return fmt.Errorf("BatchUpdateBlobs: blob %s: %s", r.Digest.GetHash(), r.Status.GetMessage())
		}
	}
	return nil
}

// ensurePresent uploads whichever of blobs the server lacks (small blobs in
// batches, large ones with ByteStream).
func (s *session) ensurePresent(ctx context.Context, blobs []blob) error {
	byHash := make(map[string]blob, len(blobs))
	request := &repb.FindMissingBlobsRequest{InstanceName: s.target.instance}
	for _, b := range blobs {
		byHash[b.digest.Hash] = b
		request.BlobDigests = append(request.BlobDigests, b.digest)
	}
	response, err := s.cas.FindMissingBlobs(ctx, request)
	if err != nil {
		return fmt.Errorf("FindMissingBlobs: %w", err)
	}
	var small []blob
	for _, d := range response.MissingBlobDigests {
		b := byHash[d.Hash]
		if len(b.data) > 1<<20 {
			if err := s.streamWrite(ctx, b, 1<<20); err != nil {
				return err
			}
		} else {
			small = append(small, b)
		}
	}
	return s.batchUpload(ctx, small)
}

func (s *session) resourcePrefix() string {
	if s.target.instance == "" {
		return ""
	}
	return s.target.instance + "/"
}

// streamWrite uploads one blob with ByteStream Write in chunkBytes messages;
// the resource name travels in the first message only, as the spec allows.
func (s *session) streamWrite(ctx context.Context, b blob, chunkBytes int) error {
	stream, err := s.byteStream.Write(ctx)
	if err != nil {
		return fmt.Errorf("ByteStream Write: %w", err)
	}
	name := fmt.Sprintf("%suploads/%s/blobs/%s/%d", s.resourcePrefix(), newUUID(), b.digest.Hash, b.digest.SizeBytes)
	for offset := 0; offset < len(b.data) || offset == 0; offset += chunkBytes {
		end := min(offset+chunkBytes, len(b.data))
		request := &bspb.WriteRequest{WriteOffset: int64(offset), Data: b.data[offset:end], FinishWrite: end == len(b.data)}
		if offset == 0 {
			request.ResourceName = name
		}
		if err := stream.Send(request); err != nil {
			if errors.Is(err, io.EOF) {
				break // The server ended the stream early (it already holds the blob); CloseAndRecv says how.
			}
			return fmt.Errorf("ByteStream Write: %w", err)
		}
		if end == len(b.data) {
			break
		}
	}
	response, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("ByteStream Write: %w", err)
	}
	if response.CommittedSize != b.digest.SizeBytes {
		return fmt.Errorf("ByteStream Write: committed %d of %d bytes", response.CommittedSize, b.digest.SizeBytes)
	}
	return nil
}

// streamRead reads one blob with ByteStream Read and returns its size; the
// size is checked, the hash is not (the client measures the server, and a
// hash of every byte would take client CPU from it).
func (s *session) streamRead(ctx context.Context, digest *repb.Digest) error {
	name := fmt.Sprintf("%sblobs/%s/%d", s.resourcePrefix(), digest.Hash, digest.SizeBytes)
	stream, err := s.byteStream.Read(ctx, &bspb.ReadRequest{ResourceName: name})
	if err != nil {
		return fmt.Errorf("ByteStream Read: %w", err)
	}
	var received int64
	for {
		response, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("ByteStream Read: %w", err)
		}
		received += int64(len(response.Data))
	}
	if received != digest.SizeBytes {
		return fmt.Errorf("ByteStream Read: received %d of %d bytes", received, digest.SizeBytes)
	}
	return nil
}
