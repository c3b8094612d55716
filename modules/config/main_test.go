package config

import (
	"testing"

	"go.uber.org/goleak"
)

// The reload stage starts a goroutine; none may outlive its hook.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
