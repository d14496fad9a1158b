package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `demo --procs N` with fewer requests than processes starts only as many
// workers as there are requests (a worker with none to send would reject
// --requests 0 and fail the demo), and reports the usual JSON object.
func TestDemoProcsMoreThanRequests(t *testing.T) {
	storage := pgStorage(t)
	for _, requests := range []int{1, 3} {
		cmd := exec.Command(binary(t), "demo", "--storage", storage, "--procs", "4",
			"--requests", strconv.Itoa(requests), "--json")
		out, err := cmd.Output()
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		require.NoError(t, err, "--requests %d: %s", requests, stderr)
		var res demoResult
		require.NoError(t, json.Unmarshal(out, &res), "%s", out)
		var m map[string]any
		require.NoError(t, json.Unmarshal(out, &m))
		assert.Len(t, m, 9, "the JSON shape tooling relies on: %s", out)
		assert.EqualValues(t, requests, res.Requests, "%s", out)
		assert.EqualValues(t, requests, res.OK, "%s", out)
		assert.Zero(t, res.Errors)
		assert.Zero(t, res.Throttled)
	}
}
