// `reapi-load fill`: uploads fresh 4 KiB blobs with BatchUpdateBlobs until
// --bytes have been sent, for the store-size curves (bench/storeScaling.ts).
// Blobs are generated per request, so memory stays flat however much is sent.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type fillResult struct {
	Blobs   int64   `json:"blobs"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

func runFill(arguments []string) error {
	flags := flag.NewFlagSet("fill", flag.ContinueOnError)
	url := flags.String("target", "", "server, grpc://HOST:PORT[/INSTANCE]")
	totalBytes := flags.Int64("bytes", 0, "bytes of fresh 4 KiB blobs to upload")
	concurrency := flags.Int("concurrency", 4, "requests in flight")
	if err := flags.Parse(arguments); err != nil {
		return err
	}
	if *totalBytes <= 0 || *concurrency <= 0 {
		return fmt.Errorf("--bytes and --concurrency must be positive")
	}
	t, err := parseTarget(*url)
	if err != nil {
		return err
	}
	s, err := openSession(t)
	if err != nil {
		return err
	}
	defer s.close()
	requestBytes := int64(uploadBatchBlobs * smallBlobBytes)
	requests := (*totalBytes + requestBytes - 1) / requestBytes
	var next atomic.Int64
	var failure error
	var once sync.Once
	var group sync.WaitGroup
	started := time.Now()
	for range *concurrency {
		group.Add(1)
		go func() {
			defer group.Done()
			source := freshSource()
			for next.Add(1) <= requests {
				request := batchUpdateRequest(s.target.instance, blobsOf(source, uploadBatchBlobs, smallBlobBytes))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := s.sendBatchUpdate(ctx, request)
				cancel()
				if err != nil {
					once.Do(func() { failure = err })
					return
				}
			}
		}()
	}
	group.Wait()
	if failure != nil {
		return failure
	}
	blobs := requests * uploadBatchBlobs
	return json.NewEncoder(os.Stdout).Encode(fillResult{
		Blobs: blobs, Bytes: blobs * smallBlobBytes, Seconds: time.Since(started).Seconds(),
	})
}
