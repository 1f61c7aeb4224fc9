/*
 * migration/migration.h: precopy live migration of guest RAM between two VMs, over
 * a byte stream (a UNIX or TCP socket, a pipe, a file), after QEMU's
 * migration/ram.c: dirty logging on pc.ram, a first round that sends
 * every page, iterative rounds that send what the guest dirtied
 * meanwhile, then stop-and-copy once the dirty set fits the downtime
 * target.
 *
 * Stream (little endian), after the magic "DMGMIG1\n": records of an
 * 8-byte header {u32 type, u32 payload length} and the payload.
 *   SETUP  page size, flags, the RAM regions {id, size}; first record
 *   PAGES  {u32 region, u32 count, u64 offset} then count pages of data
 *   ZERO   {u32 region, u32 count, u64 offset}: count pages of zeros
 *          (both: 1 to 256 pages)
 *   ROUND  end of a round: its number and the sender's figures
 *   END    a checksum of the whole RAM (every region, every page) as
 *          the source has it at switch-over, and the number of pages
 *          sent; both sides keep it as a sum of page hashes, updated as
 *          pages go, so it costs no downtime
 *   DEVICE a device's state (migration/devices.h): precopy chunks during
 *          the rounds, its stop-and-copy state in the final round
 *   CPUS   the vCPUs' registers (vm__save_cpus), in the final round; the
 *          destination resumes the guest where it was
 *   CANCEL instead of END: the source gave up (seed 004); the payload is
 *          the reason, UTF-8 text.  The destination fails and does not
 *          start the guest.
 * and, back from the destination when SETUP asks for it, ACK with the
 * checksum the destination computed.  Offsets are within a region
 * (QEMU sends RAMBlock offsets, not guest physical addresses).
 *
 * The checksum finds a corrupted or incomplete transfer; it is no
 * defence against an attacker in the stream (that is what TLS is for).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "machine_state.h"
#include "migration/state.h"
#include "migration/savevm.h"
#include "vm.h"

#define MIGRATION_MAGIC "DMGMIG1\n"

typedef struct migration_round_stats {
    guint round;                         /* 0: every page */
    bool final;                          /* stop-and-copy, vCPUs paused */
    guint64 pages;                       /* pages sent with data */
    guint64 zero_pages;                  /* pages sent as ZERO */
    guint64 bytes;                       /* stream bytes of the round */
    guint64 dirty_left;                  /* pages dirtied meanwhile */
    guint64 usec;
    double mb_per_s;                     /* bytes / usec: MB/s */
} migration_round_stats;

typedef void (*migration_progress_fn)(const migration_round_stats *round,
                                      void *opaque);

typedef struct migration_params {
    guint64 downtime_bytes;              /* 0: 8 MiB */
    guint max_rounds;                    /* live rounds at most; 0: 30 */
    guint timeout_ms;                    /* no progress on the fd; 0: 30 s */
    bool return_path;                    /* send: wait for the destination's ACK */
    bool autostart;                      /* receive: vm__start the destination */
    struct migration_tls *tls;           /* the TLS session on the fd, or NULL: plain */
    migration_progress_fn progress;      /* after each round (receive: the
                                          * source's figures for it) */
    void *opaque;
} migration_params;

typedef struct migration_stats {
    guint rounds;                        /* final round included */
    guint64 pages, zero_pages, bytes;
    guint64 usec;                        /* whole migration */
    guint64 downtime_usec;               /* send: vCPUs paused until END (+ACK) */
    guint64 expected_downtime_usec;      /* send: final set / last round's rate */
    guint64 checksum;                    /* of all RAM at switch-over */
    bool dirty_log;                      /* send: false without dirty tracking */
    bool converged;                      /* send: the dirty set fitted the target */
    guint64 device_dirty_pages;          /* send: pages devices reported written */
    guint64 device_bytes;                /* DEVICE records, both ends */
} migration_stats;

/*
 * Migrate @src's RAM to the peer on @fd.  Without dirty tracking (the
 * software accelerator) there are no live rounds: the vCPUs are paused
 * and every page is sent once.  On success @src stays paused (QEMU's
 * postmigrate state): resume or stop it.  On failure the guest keeps
 * running on @src: vCPUs resumed, dirty logging as it was.  Run it from
 * the thread that changes @src's memory map.
 */
gboolean migration__send(vm *src, int fd, const migration_params *p,
                         migration_stats *out, GError **error);

/*
 * The same for a guest whose devices @m models (NULL: none).  QEMU's
 * migrate_prepare() -> migration_is_blocked(): with any blocker in @m's
 * registry (the one `virt-dmaguard check` reads) nothing is sent, @src is
 * untouched, and the error (G_IO_ERROR_NOT_SUPPORTED) lists every
 * blocker.  While it runs @m records it (migration__active()), and a
 * device model may cancel it (migration__set_error()): the source sends
 * CANCEL, the guest keeps running on the source, and the error is
 * G_IO_ERROR_CANCELLED.
 */
gboolean migration__send_machine(vm *src, vmm_machine *m, int fd,
                                 const migration_params *p,
                                 migration_stats *out, GError **error);

/*
 * Receive into @dst, which must not be running and must have the same RAM
 * sizes.  Every record is checked; on END the destination's checksum must
 * equal the source's.  With p->autostart the guest is then started on
 * @dst, each vCPU resuming from the registers the CPUS record carried
 * (a source that never booted its vCPUs sends none: they boot).  @p may
 * be NULL.
 */
gboolean migration__receive(vm *dst, int fd, const migration_params *p,
                            migration_stats *out, GError **error);

/* The same for a guest whose devices @m models: their DEVICE records go
 * to @m's savevm entries (load_setup before the stream, load_complete
 * after END), and with p->autostart the devices run with the guest
 * (savevm__vm_running).  A record for a device @m lacks fails. */
gboolean migration__receive_machine(vm *dst, vmm_machine *m, int fd,
                                    const migration_params *p,
                                    migration_stats *out, GError **error);

/* The checksum END carries: every page of boot and pc.ram. */
guint64 migration__ram_checksum(vm *v);
