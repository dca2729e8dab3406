package vector

import (
	"errors"
	"fmt"
	"math"
)

// Unit returns v scaled to unit length, computed in float64 so that
// components whose squares overflow float32 still normalise, and rejects
// vectors that have no direction (empty or zero) or that would poison every
// score (NaN, Inf). Every store scales with it, so their scores agree.
func Unit(v []float32) ([]float32, error) {
	if len(v) == 0 {
		return nil, errors.New("vector is empty")
	}
	var sumSquares float64
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("vector component %d is %v", i, x)
		}
		sumSquares += f * f
	}
	if sumSquares == 0 {
		return nil, errors.New("vector is zero")
	}
	norm := math.Sqrt(sumSquares)
	unit := make([]float32, len(v))
	for i, x := range v {
		unit[i] = float32(float64(x) / norm)
	}
	return unit, nil
}
