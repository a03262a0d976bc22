package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RSSDiagEnv names a directory where the RSS figures of TestBench leave,
// for each shim they measure (one-<binary>, pod-<handler>), its
// /proc/<pid>/smaps (<tag>.smaps) and the resident pages of its binary's
// mappings (<tag>.pages: address and permissions, one page a line): what
// to attribute a difference in RSS to sections and symbols of the binary
// with (`go tool nm -size -sort address`, `readelf -S`).
const RSSDiagEnv = "BENCH_RSS_DIAG"

func shimBinary(pid int) string {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return exe
}

// dumpResident writes the diagnostics of RSSDiagEnv; errors only leave
// them out.
func dumpResident(pid int, tag string) {
	dir := os.Getenv(RSSDiagEnv)
	if dir == "" {
		return
	}
	if smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, tag+".smaps"), smaps, 0o644)
	}
	exe := shimBinary(pid)
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return
	}
	defer maps.Close()
	pagemap, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return
	}
	defer pagemap.Close()
	out, err := os.Create(filepath.Join(dir, tag+".pages"))
	if err != nil {
		return
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	defer w.Flush()
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		n := (end - start) / 4096
		// One 64-bit entry a page; bit 63: present in memory.
		buf := make([]byte, n*8)
		if _, err := pagemap.ReadAt(buf, int64(start/4096*8)); err != nil {
			continue
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[i*8:])&(1<<63) != 0 {
				fmt.Fprintf(w, "%x %s\n", start+i*4096, f[1])
			}
		}
	}
}
