package network

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (DNS servers,
// namespace threads).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
