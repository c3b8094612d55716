package daemon

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// DefaultDetachKeys is dockerd's detach sequence, ctrl-p ctrl-q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by Attach when the client typed the detach
// keys.
var ErrDetached = errors.New("read escape sequence")

// streams are the standard streams of one run of a container: its
// output fans out to the attached clients, its input (with OpenStdin) is
// a pipe the attached clients write to. A new set is made for each run.
type streams struct {
	stdinR *io.PipeReader
	stdinW *io.PipeWriter

	mu     sync.Mutex
	outs   map[*attacher]struct{}
	closed bool
	done   chan struct{}
}

// attacher is one attached client's output.
type attacher struct {
	stdout, stderr io.Writer
}

func newStreams(openStdin bool) *streams {
	s := &streams{outs: map[*attacher]struct{}{}, done: make(chan struct{})}
	if openStdin {
		s.stdinR, s.stdinW = io.Pipe()
	}
	return s
}

// stdin is the reader the runtime copies into the process, nil without
// OpenStdin.
func (s *streams) stdin() io.Reader {
	if s.stdinR == nil {
		return nil
	}
	return s.stdinR
}

// add registers an attached client; false once the streams are closed.
func (s *streams) add(a *attacher) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.outs[a] = struct{}{}
	return true
}

func (s *streams) remove(a *attacher) {
	s.mu.Lock()
	delete(s.outs, a)
	s.mu.Unlock()
}

// closeStdin gives the process EOF on its input.
func (s *streams) closeStdin() {
	if s.stdinW != nil {
		s.stdinW.Close()
	}
}

// close ends the run's streams: the input pipe and every attached
// client. The output has been copied by then.
func (s *streams) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.stdinR != nil {
		s.stdinR.Close()
		s.stdinW.Close()
	}
	clear(s.outs)
	close(s.done)
}

// broadcast is the writer of one output stream: it copies to every
// attached client that asked for the stream.
type broadcast struct {
	s      *streams
	stderr bool
}

func (b broadcast) Write(p []byte) (int, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	for a := range b.s.outs {
		w := a.stdout
		if b.stderr {
			w = a.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			// A client gone: it stops receiving.
			if b.stderr {
				a.stderr = nil
			} else {
				a.stdout = nil
			}
		}
	}
	return len(p), nil
}

// multiWriter writes to every writer, ignoring their errors, so that the
// log never stops because a client went away.
type multiWriter []io.Writer

func (m multiWriter) Write(p []byte) (int, error) {
	for _, w := range m {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

// ParseDetachKeys parses a detach sequence as dockerd's term.ToBytes:
// comma-separated keys, each a single character or ctrl-<a-z, @, [, \, ],
// ^, _>. Errors are 400 "Invalid detach keys (%s) provided".
func ParseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		keys = DefaultDetachKeys
	}
	var out []byte
	for k := range strings.SplitSeq(keys, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(strings.ToLower(k), "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c == '[', c == '\\', c == ']', c == '^', c == '_':
				out = append(out, c-'@')
			default:
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid detach keys (%s) provided", keys))
			}
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid detach keys (%s) provided", keys))
		}
	}
	return out, nil
}

// copyStdin copies src to dst until src ends (nil) or the detach keys
// were read (ErrDetached); bytes that began the sequence without
// completing it are passed on.
func copyStdin(dst io.Writer, src io.Reader, keys []byte) error {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+matched)
			for _, c := range buf[:n] {
				if len(keys) > 0 && c == keys[matched] {
					matched++
					if matched == len(keys) {
						if len(out) > 0 {
							_, _ = dst.Write(out)
						}
						return ErrDetached
					}
					continue
				}
				if matched > 0 {
					out = append(out, keys[:matched]...)
					matched = 0
					if c == keys[0] {
						matched = 1
						continue
					}
				}
				out = append(out, c)
			}
			if len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					return nil
				}
			}
		}
		if err != nil {
			return nil
		}
	}
}
