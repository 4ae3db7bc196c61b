// The GetActionResult figure: one stored action result with three output
// files and a stdout digest (all in the CAS, so servers that check a result's
// outputs before serving it find them), fetched by concurrent clients that
// each have their own connection, as separate Bazel processes would.
package main

import (
	"context"
	"fmt"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

func getActionResultFigure(ctx context.Context, s *session, o measureOptions) (measurement, error) {
	outputs := blobsOf(freshSource(), 4, 2<<10)
	if err := s.batchUpload(ctx, outputs); err != nil {
		return measurement{}, err
	}
	actionDigest := digestOf(randomBytes(freshSource(), 64))
	result := &repb.ActionResult{StdoutDigest: outputs[3].digest}
	for i, output := range outputs[:3] {
		result.OutputFiles = append(result.OutputFiles, &repb.OutputFile{Path: fmt.Sprintf("out/file%d.o", i), Digest: output.digest})
	}
	if _, err := s.actions.UpdateActionResult(ctx, &repb.UpdateActionResultRequest{
		InstanceName: s.target.instance, ActionDigest: actionDigest, ActionResult: result,
	}); err != nil {
		return measurement{}, fmt.Errorf("UpdateActionResult: %w", err)
	}
	concurrency := o.concurrencyOr(8)
	clients := make([]repb.ActionCacheClient, concurrency)
	for i := range clients {
		connection, err := dial(s.target)
		if err != nil {
			return measurement{}, err
		}
		defer connection.Close()
		clients[i] = repb.NewActionCacheClient(connection)
	}
	request := &repb.GetActionResultRequest{InstanceName: s.target.instance, ActionDigest: actionDigest}
	get := func(worker, _ int) error {
		response, err := clients[worker].GetActionResult(ctx, request)
		if err != nil {
			return fmt.Errorf("GetActionResult: %w", err)
		}
		if len(response.OutputFiles) != 3 {
			return fmt.Errorf("GetActionResult returned %d output files, expected 3", len(response.OutputFiles))
		}
		return nil
	}
	// Connect every client before the clock starts.
	for worker := range clients {
		if err := get(worker, 0); err != nil {
			return measurement{}, err
		}
	}
	m := o.newMeter()
	var completed int
	err := m.time(func() (err error) {
		completed, err = untilDeadline(time.Now().Add(o.duration), concurrency, 1<<30, get)
		return err
	})
	return m.measured(measurement{
		Unit: "hits/s", Value: rate(float64(completed), m),
		Detail: fmt.Sprintf("%d hits, %d clients each on its own connection", completed, concurrency),
	}), err
}
