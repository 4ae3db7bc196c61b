// `reapi-load sink`: the null sink, a REAPI server that does no work. It
// remembers which digests it was given (not their bytes), answers reads with
// zeros of the right length and finishes every action at once. Whatever rate
// the client reaches against it is the client's own ceiling on this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"github.com/bazelbuild/remote-apis/build/bazel/semver"
	bspb "google.golang.org/genproto/googleapis/bytestream"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

const sinkReadChunkBytes = 1 << 20

type sink struct {
	repb.UnimplementedCapabilitiesServer
	repb.UnimplementedContentAddressableStorageServer
	repb.UnimplementedActionCacheServer
	repb.UnimplementedExecutionServer
	bspb.UnimplementedByteStreamServer

	mutex   sync.Mutex
	present map[string]struct{}
	results map[string]*repb.ActionResult
	zeros   []byte
}

func runSink(arguments []string) error {
	flags := flag.NewFlagSet("sink", flag.ContinueOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on")
	if err := flags.Parse(arguments); err != nil {
		return err
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(maximumMessageBytes),
		grpc.MaxSendMsgSize(maximumMessageBytes),
		// Large flow-control windows, so that the sink never makes the client wait.
		grpc.InitialWindowSize(16<<20),
		grpc.InitialConnWindowSize(64<<20),
	)
	s := &sink{present: map[string]struct{}{}, results: map[string]*repb.ActionResult{}, zeros: make([]byte, sinkReadChunkBytes)}
	repb.RegisterCapabilitiesServer(server, s)
	repb.RegisterContentAddressableStorageServer(server, s)
	repb.RegisterActionCacheServer(server, s)
	repb.RegisterExecutionServer(server, s)
	bspb.RegisterByteStreamServer(server, s)
	fmt.Printf("serving on %s\n", listener.Addr())
	return server.Serve(listener)
}

func (s *sink) GetCapabilities(context.Context, *repb.GetCapabilitiesRequest) (*repb.ServerCapabilities, error) {
	return &repb.ServerCapabilities{
		CacheCapabilities: &repb.CacheCapabilities{
			DigestFunctions:               []repb.DigestFunction_Value{repb.DigestFunction_SHA256},
			ActionCacheUpdateCapabilities: &repb.ActionCacheUpdateCapabilities{UpdateEnabled: true},
			MaxBatchTotalSizeBytes:        4 << 20,
		},
		ExecutionCapabilities: &repb.ExecutionCapabilities{DigestFunction: repb.DigestFunction_SHA256, ExecEnabled: true},
		LowApiVersion:         &semver.SemVer{Major: 2},
		HighApiVersion:        &semver.SemVer{Major: 2, Minor: 3},
	}, nil
}

func (s *sink) FindMissingBlobs(_ context.Context, request *repb.FindMissingBlobsRequest) (*repb.FindMissingBlobsResponse, error) {
	response := &repb.FindMissingBlobsResponse{}
	s.mutex.Lock()
	defer s.mutex.Unlock()
	for _, d := range request.BlobDigests {
		if _, ok := s.present[d.Hash]; !ok {
			response.MissingBlobDigests = append(response.MissingBlobDigests, d)
		}
	}
	return response, nil
}

func (s *sink) BatchUpdateBlobs(_ context.Context, request *repb.BatchUpdateBlobsRequest) (*repb.BatchUpdateBlobsResponse, error) {
	response := &repb.BatchUpdateBlobsResponse{}
	s.mutex.Lock()
	defer s.mutex.Unlock()
	for _, r := range request.Requests {
		s.present[r.Digest.GetHash()] = struct{}{}
		response.Responses = append(response.Responses, &repb.BatchUpdateBlobsResponse_Response{Digest: r.Digest, Status: &statuspb.Status{}})
	}
	return response, nil
}

func (s *sink) BatchReadBlobs(_ context.Context, request *repb.BatchReadBlobsRequest) (*repb.BatchReadBlobsResponse, error) {
	response := &repb.BatchReadBlobsResponse{}
	s.mutex.Lock()
	defer s.mutex.Unlock()
	for _, d := range request.Digests {
		r := &repb.BatchReadBlobsResponse_Response{Digest: d, Status: &statuspb.Status{}}
		if _, ok := s.present[d.Hash]; !ok || d.SizeBytes > int64(len(s.zeros)) {
			r.Status.Code = int32(codes.NotFound)
		} else {
			r.Data = s.zeros[:d.SizeBytes]
		}
		response.Responses = append(response.Responses, r)
	}
	return response, nil
}

func (s *sink) Write(stream bspb.ByteStream_WriteServer) error {
	var name string
	var received int64
	for {
		request, err := stream.Recv()
		if err == io.EOF {
			return status.Error(codes.InvalidArgument, "the write ended without finish_write")
		}
		if err != nil {
			return err
		}
		if name == "" {
			name = request.ResourceName
		}
		received += int64(len(request.Data))
		if request.FinishWrite {
			break
		}
	}
	if hash, _, ok := hashAndSize(name); ok {
		s.mutex.Lock()
		s.present[hash] = struct{}{}
		s.mutex.Unlock()
	}
	return stream.SendAndClose(&bspb.WriteResponse{CommittedSize: received})
}

func (s *sink) Read(request *bspb.ReadRequest, stream bspb.ByteStream_ReadServer) error {
	_, size, ok := hashAndSize(request.ResourceName)
	if !ok {
		return status.Error(codes.InvalidArgument, "unrecognised resource name")
	}
	for sent := int64(0); sent < size; sent += sinkReadChunkBytes {
		if err := stream.Send(&bspb.ReadResponse{Data: s.zeros[:min(sinkReadChunkBytes, size-sent)]}); err != nil {
			return err
		}
	}
	return nil
}

// hashAndSize finds ".../blobs/HASH/SIZE" in a ByteStream resource name.
func hashAndSize(name string) (string, int64, bool) {
	parts := strings.Split(name, "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "blobs" {
			size, err := strconv.ParseInt(parts[i+2], 10, 64)
			return parts[i+1], size, err == nil
		}
	}
	return "", 0, false
}

func (s *sink) GetActionResult(_ context.Context, request *repb.GetActionResultRequest) (*repb.ActionResult, error) {
	s.mutex.Lock()
	defer s.mutex.Unlock()
	if result, ok := s.results[request.ActionDigest.GetHash()]; ok {
		return result, nil
	}
	return nil, status.Error(codes.NotFound, "no such action result")
}

func (s *sink) UpdateActionResult(_ context.Context, request *repb.UpdateActionResultRequest) (*repb.ActionResult, error) {
	s.mutex.Lock()
	defer s.mutex.Unlock()
	s.results[request.ActionDigest.GetHash()] = request.ActionResult
	return request.ActionResult, nil
}

// Execute finishes at once with a successful result naming the workload's one
// output file (the digest of empty content, which no one reads).
func (s *sink) Execute(request *repb.ExecuteRequest, stream repb.Execution_ExecuteServer) error {
	response, err := anypb.New(&repb.ExecuteResponse{
		Result: &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: trivialOutput, Digest: digestOf(nil)}}},
		Status: &statuspb.Status{},
	})
	if err != nil {
		return err
	}
	return stream.Send(&longrunningpb.Operation{
		Name:   "operations/" + request.ActionDigest.GetHash(),
		Done:   true,
		Result: &longrunningpb.Operation_Response{Response: response},
	})
}
