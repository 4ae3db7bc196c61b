// `reapi-load capabilities`: asks a server what it serves, so the orchestrator
// runs the execution figure only against servers that execute.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

type capabilitiesReport struct {
	ExecutionEnabled bool   `json:"executionEnabled"`
	LowAPIVersion    string `json:"lowApiVersion"`
	HighAPIVersion   string `json:"highApiVersion"`
}

func runCapabilities(arguments []string) error {
	flags := flag.NewFlagSet("capabilities", flag.ContinueOnError)
	url := flags.String("target", "", "server, grpc://HOST:PORT[/INSTANCE]")
	if err := flags.Parse(arguments); err != nil {
		return err
	}
	t, err := parseTarget(*url)
	if err != nil {
		return err
	}
	connection, err := dial(t)
	if err != nil {
		return err
	}
	defer connection.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	capabilities, err := repb.NewCapabilitiesClient(connection).GetCapabilities(ctx, &repb.GetCapabilitiesRequest{InstanceName: t.instance})
	if err != nil {
		return fmt.Errorf("GetCapabilities of %s: %w", *url, err)
	}
	version := func(v interface {
		GetMajor() int32
		GetMinor() int32
	}) string {
		return fmt.Sprintf("%d.%d", v.GetMajor(), v.GetMinor())
	}
	return json.NewEncoder(os.Stdout).Encode(capabilitiesReport{
		ExecutionEnabled: capabilities.GetExecutionCapabilities().GetExecEnabled(),
		LowAPIVersion:    version(capabilities.GetLowApiVersion()),
		HighAPIVersion:   version(capabilities.GetHighApiVersion()),
	})
}
