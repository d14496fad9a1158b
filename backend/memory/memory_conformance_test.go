package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/backendtest"
	"github.com/smartratelimit/smartratelimit/backend/memory"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) srl.Backend {
		b, err := memory.New()
		require.NoError(t, err)
		return b
	})
}
