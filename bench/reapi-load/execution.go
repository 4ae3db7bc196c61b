// The execute figure: N distinct trivial actions (`sh -c` copying one small
// input file into one output file), all uploaded before the clock starts,
// executed by concurrent clients; throughput and per-action latency from the
// Execute call to the finished operation.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// trivialOutput is the one output file every action produces.
const trivialOutput = "out.txt"

func trivialCommand() *repb.Command {
	return &repb.Command{
		Arguments:            []string{"/bin/sh", "-c", "cat in.txt in.txt > " + trivialOutput},
		EnvironmentVariables: []*repb.Command_EnvironmentVariable{{Name: "PATH", Value: "/bin:/usr/bin"}},
		// Both spellings, so that REAPI 2.0 servers and 2.1+ servers see the output.
		OutputFiles: []string{trivialOutput},
		OutputPaths: []string{trivialOutput},
	}
}

func marshalBlob(message proto.Message) (blob, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(message)
	if err != nil {
		return blob{}, err
	}
	return blob{digest: digestOf(data), data: data}, nil
}

// trivialActions makes count actions that differ in their input file's content,
// with a fresh nonce so no server has seen (or cached) them; it returns the
// action digests and every blob they need.
func trivialActions(count int) ([]*repb.Digest, []blob, error) {
	command, err := marshalBlob(trivialCommand())
	if err != nil {
		return nil, nil, err
	}
	nonce := newUUID()
	blobs := []blob{command}
	actions := make([]*repb.Digest, count)
	for i := range actions {
		input := []byte(fmt.Sprintf("granary bench %s action %d\n", nonce, i))
		inputDigest := digestOf(input)
		root, err := marshalBlob(&repb.Directory{Files: []*repb.FileNode{{Name: "in.txt", Digest: inputDigest}}})
		if err != nil {
			return nil, nil, err
		}
		action, err := marshalBlob(&repb.Action{CommandDigest: command.digest, InputRootDigest: root.digest})
		if err != nil {
			return nil, nil, err
		}
		blobs = append(blobs, blob{digest: inputDigest, data: input}, root, action)
		actions[i] = action.digest
	}
	return actions, blobs, nil
}

func executeFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	actions, blobs, err := trivialActions(o.actionCount)
	if err != nil {
		return measurement{}, err
	}
	if err := s.batchUpload(ctx, blobs); err != nil {
		return measurement{}, err
	}
	concurrency := o.concurrencyOr(8)
	latencies := make([]time.Duration, len(actions))
	m := o.newMeter()
	var completed int
	err = m.time(func() (err error) {
		completed, err = untilDeadline(time.Now().Add(time.Hour), concurrency, len(actions), func(_, job int) error {
			start := time.Now()
			if err := s.execute(ctx, actions[job]); err != nil {
				return err
			}
			latencies[job] = time.Since(start)
			return nil
		})
		return err
	})
	if err != nil {
		return measurement{}, err
	}
	p50, p99 := percentileMs(latencies, 0.5), percentileMs(latencies, 0.99)
	return m.measured(measurement{
		Unit: "actions/s", Value: rate(float64(completed), m),
		P50Ms: &p50, P99Ms: &p99,
		Detail: fmt.Sprintf("%d distinct trivial actions, %d in flight", completed, concurrency),
	}), nil
}

// execute runs one action to completion: Execute, then WaitExecution if the
// stream ends before the operation is done; the result must be a success with
// the one output file.
func (s *session) execute(ctx context.Context, action *repb.Digest) error {
	stream, err := s.execution.Execute(ctx, &repb.ExecuteRequest{InstanceName: s.target.instance, ActionDigest: action})
	if err != nil {
		return fmt.Errorf("Execute: %w", err)
	}
	for {
		operation, name, err := lastOperation(stream.Recv)
		if err != nil {
			return fmt.Errorf("Execute: %w", err)
		}
		if operation != nil && operation.Done {
			return checkExecuteResponse(operation)
		}
		if name == "" {
			return errors.New("Execute: the stream ended before naming an operation")
		}
		waiting, err := s.execution.WaitExecution(ctx, &repb.WaitExecutionRequest{Name: name})
		if err != nil {
			return fmt.Errorf("WaitExecution: %w", err)
		}
		stream = waiting
	}
}

// lastOperation reads a stream of operations until it ends or an operation is
// done; it returns the last operation and its name.
func lastOperation(receive func() (*longrunningpb.Operation, error)) (*longrunningpb.Operation, string, error) {
	var last *longrunningpb.Operation
	for {
		operation, err := receive()
		if errors.Is(err, io.EOF) {
			if last == nil {
				return nil, "", nil
			}
			return last, last.Name, nil
		}
		if err != nil {
			return nil, "", err
		}
		last = operation
		if operation.Done {
			return operation, operation.Name, nil
		}
	}
}

func checkExecuteResponse(operation *longrunningpb.Operation) error {
	if e := operation.GetError(); e != nil {
		return fmt.Errorf("operation failed: code %d: %s", e.Code, e.Message)
	}
	response := &repb.ExecuteResponse{}
	if err := operation.GetResponse().UnmarshalTo(response); err != nil {
		return fmt.Errorf("operation response: %w", err)
	}
	if code := response.GetStatus().GetCode(); code != int32(codes.OK) {
		return fmt.Errorf("action failed: code %d: %s", code, response.GetStatus().GetMessage())
	}
	result := response.GetResult()
	if result.GetExitCode() != 0 {
		return fmt.Errorf("action exited with %d", result.GetExitCode())
	}
	if len(result.GetOutputFiles()) != 1 || result.GetOutputFiles()[0].GetPath() != trivialOutput {
		return fmt.Errorf("action result has %d output files, expected %s", len(result.GetOutputFiles()), trivialOutput)
	}
	return nil
}
