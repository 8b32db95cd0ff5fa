// Package replicated writes to a Redis master and waits until its replicas hold the write
// (WAIT), so that a Sentinel failover to one of them cannot lose it: one place for the
// pipeline that keeps the write and its WAIT on one connection.
package replicated

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnconfirmed marks a write the replicas did not all confirm in time: it may be on the
// master only, and a failover now could lose it.
var ErrUnconfirmed = errors.New("a failover now could lose it")

// Write queues the commands of write on one pipeline, then WAIT for replicas replicas
// (bounded by timeout) on the same connection, and runs it. A pipeline error (redis.Nil
// aside: a command that found nothing) is returned as is; fewer confirmations than
// replicas is ErrUnconfirmed with the counts. With replicas 0 it only runs the pipeline.
func Write(ctx context.Context, rdb redis.Cmdable, replicas int, timeout time.Duration, write func(redis.Pipeliner)) error {
	var acked *redis.Cmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		write(p)
		if replicas > 0 {
			acked = p.Do(ctx, "WAIT", replicas, timeout.Milliseconds())
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if acked == nil {
		return nil
	}
	if n, _ := acked.Int64(); n < int64(replicas) {
		return fmt.Errorf("%d of %d Redis replicas confirmed it within %s: %w", n, replicas, timeout, ErrUnconfirmed)
	}
	return nil
}
