package apiserver

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// JSONStream writes a streaming JSON response: one JSON value per line,
// each flushed to the client at once — the framing of dockerd's progress
// streams (image pull, load, push, import, build) and of /events. Create
// it before the first byte of the response; it is safe for concurrent use
// (layer downloads report from their own goroutines).
//
// Once a stream has started, the status is 200 and an error can only be
// reported inside it: return the result of Error from the handler.
type JSONStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	enc     *json.Encoder
	started bool
	err     error
}

// NewJSONStream returns a stream on w with Content-Type application/json
// (what dockerd sends for progress streams and what clients expect). The
// header is sent with the first message, so a handler may still return
// an ordinary error before it writes anything.
func NewJSONStream(w http.ResponseWriter) *JSONStream {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONStream{w: w, rc: http.NewResponseController(w), enc: enc}
}

// Start sends the 200 header and flushes it, for streams (such as
// /events) whose first message may be long in coming. Later calls do
// nothing.
func (s *JSONStream) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start()
}

func (s *JSONStream) start() error {
	if s.started {
		return s.err
	}
	s.started = true
	if s.w.Header().Get("Content-Type") == "" {
		s.w.Header().Set("Content-Type", "application/json")
	}
	s.w.WriteHeader(http.StatusOK)
	s.flush()
	return s.err
}

func (s *JSONStream) flush() {
	if err := s.rc.Flush(); err != nil && s.err == nil {
		s.err = err
	}
}

// Encode writes v as one line of the stream and flushes it. After a
// write error (the client went away) every call returns that error.
func (s *JSONStream) Encode(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(); err != nil {
		return err
	}
	if err := s.enc.Encode(v); err != nil {
		s.err = err
		return err
	}
	s.flush()
	return s.err
}

// progressLine is a progress message as dockerd's streamformatter writes
// it: jsonstream.Message plus the legacy "error" string that older
// clients read instead of errorDetail.
type progressLine struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// Send writes one progress message.
func (s *JSONStream) Send(m jsonstream.Message) error {
	return s.Encode(progressLine{Message: m})
}

// Status writes {"status": status, "id": id} (id may be ""), a line such
// as "Pulling fs layer" for layer id, or "Loaded image: busybox:latest".
func (s *JSONStream) Status(id, status string) error {
	return s.Send(jsonstream.Message{ID: id, Status: status})
}

// Progress writes a progress line for id: status ("Downloading") with
// current of total bytes (total 0 when unknown), which the docker CLI
// draws as a bar.
func (s *JSONStream) Progress(id, status string, current, total int64) error {
	return s.Send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{Current: current, Total: total}})
}

// Error writes err as the stream's final message, {"errorDetail":
// {"message": ...}, "error": ...}, which the docker CLI prints and exits
// non-zero on. It returns nil once written, for the handler to return:
// the status line has already gone out. If nothing has been written yet
// it returns err instead, so that the client gets a proper status code.
// A nil err writes nothing and returns nil, so a handler may end with
// `return s.Error(err)` whatever err is.
func (s *JSONStream) Error(err error) error {
	if err == nil {
		return nil
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return err
	}
	return s.Encode(progressLine{
		Message:      jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}},
		ErrorMessage: err.Error(),
	})
}
