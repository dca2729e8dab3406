package natsdocs_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

func openStore(t *testing.T) *natsdocs.Store {
	t.Helper()
	_, conn := natstest.Run(t)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	s, err := natsdocs.Open(t.Context(), js, "documents")
	require.NoError(t, err)
	return s
}

func TestRoundTrip(t *testing.T) {
	s := openStore(t)
	tests := []struct {
		name string
		text string
	}{
		{"large", largeText(5 << 20)},
		{"unicode", "Grüße aus Köln — 東京は日本の首都です。 Привет, мир! 🚀👩‍🔬 emoji and combining é"},
		{"empty", ""},
		{"name with spaces/and slashes ü", "names are not restricted to key syntax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			require.NoError(t, s.Put(ctx, tc.name, tc.text))
			got, err := s.Get(ctx, tc.name)
			require.NoError(t, err)
			require.Equal(t, len(tc.text), len(got))
			require.True(t, got == tc.text, "text differs after round trip")
		})
	}
}

func TestPutReplaces(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	require.NoError(t, s.Put(ctx, "doc", largeText(300<<10)))
	require.NoError(t, s.Put(ctx, "doc", "short"))
	got, err := s.Get(ctx, "doc")
	require.NoError(t, err)
	require.Equal(t, "short", got)
}

func TestMissingAndDeleted(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	_, err := s.Get(ctx, "never-stored")
	require.ErrorIs(t, err, natsdocs.ErrNotFound)

	require.NoError(t, s.Put(ctx, "doomed", "text"))
	require.NoError(t, s.Delete(ctx, "doomed"))
	_, err = s.Get(ctx, "doomed")
	require.ErrorIs(t, err, natsdocs.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "doomed"), "deleting twice is not an error")
	require.NoError(t, s.Delete(ctx, "never-stored"))

	require.NoError(t, s.Put(ctx, "doomed", "back again"))
	got, err := s.Get(ctx, "doomed")
	require.NoError(t, err)
	require.Equal(t, "back again", got)
}

func TestEmptyNameRejected(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	require.Error(t, s.Put(ctx, "", "text"))
	_, err := s.Get(ctx, "")
	require.Error(t, err)
	require.Error(t, s.Delete(ctx, ""))
}

// largeText builds size bytes of varied words so that a chunk boundary
// mistake (dropped, repeated or reordered chunk) changes the content.
func largeText(size int) string {
	rng := rand.New(rand.NewPCG(42, 42))
	words := []string{"graph", "entity", "relation", "chunk", "Köln", "東京", "vector", "näive"}
	var b strings.Builder
	b.Grow(size + 16)
	for b.Len() < size {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()
}
