package opcli

import (
	"fmt"
	"io"
)

// ErrWriter keeps the first write error, so a long report is written without an
// error check on every line.
type ErrWriter struct {
	w   io.Writer
	err error
}

// NewErrWriter returns an ErrWriter writing to w.
func NewErrWriter(w io.Writer) *ErrWriter { return &ErrWriter{w: w} }

func (e *ErrWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// Printf writes a formatted line (or part of one).
func (e *ErrWriter) Printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}

// Err is the first write error, nil when every write succeeded.
func (e *ErrWriter) Err() error { return e.err }
