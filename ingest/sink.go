package ingest

import (
	"context"
	"fmt"
)

// Sink stores one MQTT message synchronously: the embedded broker calls it
// before it acknowledges a meter's publish, so the meter keeps (and
// resends) whatever is not stored.
type Sink struct {
	dec  *MessageDecoder
	pipe *Pipeline
}

// NewSink returns a sink decoding with dec and writing through pipe.
func NewSink(dec *MessageDecoder, pipe *Pipeline) *Sink { return &Sink{dec: dec, pipe: pipe} }

// Ingest decodes msg and returns once its readings and rejects have
// committed (nil), or with an error when they did not before ctx ended or
// the pipeline stopped; then nothing may be assumed stored.
func (s *Sink) Ingest(ctx context.Context, msg Message) error {
	env, err := s.dec.Envelope(ctx, msg)
	if err != nil {
		return err
	}
	if len(env.Readings) == 0 && len(env.Rejects) == 0 {
		return nil // counted, nothing to store (no_reading)
	}
	done := make(chan error, 1)
	env.Done = func(err error) { done <- err }
	if err := s.pipe.Submit(ctx, env); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ingest: waiting for commit: %w", ctx.Err())
	}
}
