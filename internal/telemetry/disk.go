package telemetry

import (
	"os"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// RegisterDisk exports the free and total space of the file system that
// holds dir (the data directory), and the size of file when it is not ""
// (the SQLite database), so alerts can fire before the disk fills.
func RegisterDisk(reg prometheus.Registerer, dir, file string) {
	f := promauto.With(reg)
	statfs := func(pick func(*syscall.Statfs_t) float64) func() float64 {
		return func() float64 {
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				return 0
			}
			return pick(&st)
		}
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_data_disk_free_bytes",
		Help: "Free space available to Strata on the file system of the data directory.",
	}, statfs(func(st *syscall.Statfs_t) float64 { return float64(st.Bavail) * float64(st.Bsize) }))
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_data_disk_size_bytes",
		Help: "Size of the file system of the data directory.",
	}, statfs(func(st *syscall.Statfs_t) float64 { return float64(st.Blocks) * float64(st.Bsize) }))
	if file == "" {
		return
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_sqlite_file_size_bytes",
		Help: "Size of the SQLite database file and its write-ahead log.",
	}, func() float64 {
		var n int64
		for _, p := range []string{file, file + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				n += fi.Size()
			}
		}
		return float64(n)
	})
}
