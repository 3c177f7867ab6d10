// Package ttl holds the expiry machinery of diskcache: the clock every
// expiry decision reads, the layout of the expiry index, and the sweeper that
// deletes expired records in the background.
//
// Pebble has no compaction filter, and block property collectors cannot see
// values at the newest format, so expiry works in two layers. Every read
// checks the record's expiry and treats an expired record as missing. The
// sweeper walks the expiry index (keys ordered by expiry time) from the start
// up to now in bounded rounds, deletes what has expired, and then asks the
// store to give the freed space back. The store is reached through the small
// Target interface, so this package knows nothing of Pebble.
package ttl
