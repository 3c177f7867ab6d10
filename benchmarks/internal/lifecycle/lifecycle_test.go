package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
)

func TestOpenSetClose(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenSetClose(dir, "k", []byte("v"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"open_s", "set_s", "close_s"} {
		if m[step] <= 0 {
			t.Errorf("%s = %v", step, m[step])
		}
	}
	c, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(context.Background(), "k")
	if err != nil || string(v) != "v" {
		t.Fatalf("after OpenSetClose: %q, %v", v, err)
	}
}
