package postgres

import (
	"testing"

	"github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) smartratelimit.Backend {
		b, _, _ := newTest(t)
		return b
	})
}
