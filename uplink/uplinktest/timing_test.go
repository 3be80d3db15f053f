package uplinktest

import (
	"testing"
	"time"
)

func TestTiming(t *testing.T) {
	s := time.Now()
	l := StartKinesisMock(t, "s", 1)
	t.Logf("mock start %v", time.Since(s)); s = time.Now()
	l.ReadAll(t, "s")
	t.Logf("readall %v", time.Since(s)); s = time.Now()
	l.Stop()
	t.Logf("stop %v", time.Since(s)); s = time.Now()
	l.Start()
	t.Logf("start %v", time.Since(s)); s = time.Now()
	k := StartKinesalite(t, "s", 1)
	t.Logf("kinesalite start %v", time.Since(s)); s = time.Now()
	k.ReadAll(t, "s")
	t.Logf("readall %v", time.Since(s)); s = time.Now()
}
