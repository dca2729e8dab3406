package extractor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStoppedJobsForgetsTheOldestFirst(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		add    []string
		kept   []string
		forgot []string
	}{
		{name: "within the bound", max: 3, add: []string{"a", "b"}, kept: []string{"a", "b"}, forgot: []string{"c"}},
		{name: "one over", max: 2, add: []string{"a", "b", "c"}, kept: []string{"b", "c"}, forgot: []string{"a"}},
		{name: "a repeat is not added again", max: 2, add: []string{"a", "a", "b"}, kept: []string{"a", "b"}},
		{name: "around the ring", max: 2, add: []string{"a", "b", "c", "d", "e"}, kept: []string{"d", "e"}, forgot: []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStoppedJobs(tt.max)
			for _, id := range tt.add {
				s.add(id)
			}
			for _, id := range tt.kept {
				require.True(t, s.has(id), id)
			}
			for _, id := range tt.forgot {
				require.False(t, s.has(id), id)
			}
			require.LessOrEqual(t, len(s.ids), tt.max)
		})
	}
}
