// SPDX-License-Identifier: GPL-2.0
/*
 * vgpu.c - guest driver of the vgpu-stub paravirtual PCI device
 * (1234:7647), the guest end of GPU sharing for XCP-ng VMs.
 *
 * The driver owns BAR0 and gives each device a character device
 * /dev/vgpuN (a misc device) whose ioctls (include/uapi/vgpu.h) submit
 * requests on user buffers and reap their completions; poll/epoll on the
 * file reports completions.  Two data paths:
 *
 *  - rings (the device has VGPU_CAP_RINGS, protocol 2.x): a submission
 *    and a completion ring in guest memory (include/vgpu/ring.h), the
 *    user's pages pinned and handed to the device as scatter-gather lists
 *    (no copy in the guest), many requests in flight, completions by
 *    MSI-X (VGPU_CAP_MSIX) or by bounded polling, a doorbell buffer
 *    (VGPU_CAP_DBBUF) so that a busy guest does not trap per request;
 *  - v1 registers (any device): the driver copies the request into the
 *    1 KB request buffer, rings DOORBELL and polls STATUS with a bounded
 *    wait, one request at a time.  This is the path for guests where
 *    sysfs resource0 cannot be mapped (kernel lockdown, Secure Boot).
 *
 * Requests in flight when the device goes away (unbind, remove, unload)
 * complete with -ENODEV, their waiters wake, their pages are released; an
 * open file outlives its device and only answers -ENODEV from then on.
 *
 * Modelled on drivers/misc/pci_endpoint_test.c.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "uapi/vgpu.h"
#include "vgpu/names.h"
#include "vgpu/ops.h"
#include "vgpu/regs.h"
#include "vgpu/ring.h"
#include "vgpu/rpc.h"

#ifdef __BIG_ENDIAN
#error "vgpu: the device's rings and registers are little-endian"
#endif

#define DRV_NAME "vgpu"
#ifndef VGPU_MODULE_VERSION
#define VGPU_MODULE_VERSION "0.1.0"
#endif

static unsigned int max_inflight = 32;
module_param(max_inflight, uint, 0444);
MODULE_PARM_DESC(max_inflight,
		 "requests per open file submitted and not reaped (1..4096, default 32)");

static unsigned int queue_depth = 256;
module_param(queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth,
		 "ring entries, a power of two (4..4096, default 256)");

static bool use_rings = true;
module_param(use_rings, bool, 0444);
MODULE_PARM_DESC(use_rings,
		 "use the v2 rings when the device has them (default 1; 0: v1 registers)");

static bool use_msix = true;
module_param(use_msix, bool, 0444);
MODULE_PARM_DESC(use_msix,
		 "use MSI-X when the device has it (default 1; 0: poll)");

static unsigned int timeout_ms = 30000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms,
		 "a ring request without completion after this long fails and the rings are reset (default 30000)");

static unsigned int irq_coalesce;
module_param(irq_coalesce, uint, 0444);
MODULE_PARM_DESC(irq_coalesce,
		 "IRQ_COALESCE value: usec << 16 | completions (default 0: each)");

static DEFINE_IDA(vgpu_ida);

/* One user buffer, pinned for the life of a request. */
struct vgpu_buf {
	struct page **pages;
	unsigned int nr_pages;
	unsigned int offset;	/* of the first byte in pages[0] */
	u64 len;
	bool device_writes;	/* the response: dirty at release */
	bool dirty;
	bool kernel_page;	/* pages[0] is the driver's own, not pinned */
	struct sg_table sgt;
	bool sgt_alloc, mapped;
	struct vgpu_sge *sgl;	/* rings: the list the device reads */
	dma_addr_t sgl_dma;
	size_t sgl_bytes;
	unsigned int nents;
};

struct vgpu_file;

struct vgpu_req {
	struct list_head node;	/* v1 pending list or file's done list */
	struct vgpu_file *vf;
	u32 tag;		/* the caller's */
	u32 slot;		/* rings: index in vdev->slots, the SQE tag */
	unsigned long deadline;	/* rings: jiffies */
	struct vgpu_buf req, resp;
	u32 status;		/* enum vgpu_error */
	s32 error;		/* 0 or -errno of the driver */
	u64 resp_len;
};

struct vgpu_dev {
	struct kref kref;
	struct pci_dev *pdev;
	void __iomem *bar0;
	int id;
	char name[16];
	struct miscdevice misc;

	/*
	 * lock: dead, the file list, the v1 queue and all ring state.  Never
	 * held while the v1 path waits on the device.
	 */
	struct mutex lock;
	bool dead;
	struct list_head files;
	u32 path;		/* VGPU_DRIVER_PATH_* */
	u32 irq_mode;		/* VGPU_DRIVER_IRQ_* */
	u64 max_xfer;
	u32 max_sg;
	u32 caps_at_probe;
	atomic_t inflight;	/* submitted, not completed (all files) */
	u32 session_nonce;	/* random, the high half of session ids */
	atomic_t next_session;

	/* v1 */
	struct list_head v1_pending;
	struct work_struct v1_work;
	u32 v1_next_id;

	/* rings */
	bool rings_ok;		/* running; false after a failed reset */
	u32 depth;
	struct vgpu_sqe *sq;
	dma_addr_t sq_dma;
	struct vgpu_cqe *cq;
	dma_addr_t cq_dma;
	struct vgpu_dbbuf *dbbuf;
	dma_addr_t dbbuf_dma;
	u32 sq_tail, cq_head;
	u16 cq_phase;
	struct vgpu_req **slots;
	u32 nr_busy;
	u32 max_busy;		/* depth - 2: see vgpu_ring_setup() */
	u32 reaped;		/* completions taken, for the watchdog */
	u32 reaped_seen;
	/* CQEs for no request in flight (a device bug, or a doubled one) */
	atomic64_t stray_cqes;
	wait_queue_head_t slot_wq;
	struct delayed_work poll_work;
	int nvec;
};

/* One open file: its requests and completions. */
struct vgpu_file {
	struct kref kref;
	struct vgpu_dev *vdev;
	struct list_head node;	/* in vdev->files */
	spinlock_t lock;	/* done, nr_done, outstanding, closed */
	struct list_head done;
	unsigned int nr_done;
	unsigned int outstanding; /* submitted, not reaped */
	bool closed;
	wait_queue_head_t wq;
	u64 session;		/* VGPU_IOCTL_SESSION's id, 0 until asked */
};

/* ------------------------------------------------------------------ */
/* Registers                                                           */
/* ------------------------------------------------------------------ */

static u32 vgpu_rd(struct vgpu_dev *vdev, u32 off)
{
	return readl(vdev->bar0 + off);
}

static void vgpu_wr(struct vgpu_dev *vdev, u32 off, u32 val)
{
	writel(val, vdev->bar0 + off);
}

static void vgpu_read_pool(struct vgpu_dev *vdev, u32 caps,
			   char name[VGPU_POOL_NAME_SIZE], int *state)
{
	u32 w[VGPU_POOL_NAME_REGS] = { 0 };
	unsigned int i;

	for (i = 0; i < VGPU_POOL_NAME_REGS; i++)
		if (i == 0 || (caps & VGPU_CAP_POOL_NAME))
			w[i] = vgpu_rd(vdev, vgpu_pool_name_reg(i));
	*state = vgpu_pool_name_from_regs(w, name);
}

/* ------------------------------------------------------------------ */
/* Lifetimes                                                           */
/* ------------------------------------------------------------------ */

static void vgpu_dev_free(struct kref *kref)
{
	struct vgpu_dev *vdev = container_of(kref, struct vgpu_dev, kref);

	kfree(vdev);
}

static void vgpu_file_free(struct kref *kref)
{
	struct vgpu_file *vf = container_of(kref, struct vgpu_file, kref);

	kref_put(&vf->vdev->kref, vgpu_dev_free);
	kfree(vf);
}

/* ------------------------------------------------------------------ */
/* User buffers                                                        */
/* ------------------------------------------------------------------ */

static int vgpu_buf_pin(struct vgpu_buf *b, u64 uaddr, u64 len,
			bool device_writes)
{
	unsigned long start = uaddr & PAGE_MASK;
	unsigned long end;
	long nr, got;

	b->len = len;
	b->device_writes = device_writes;
	if (!len)
		return 0;
	if (uaddr != (unsigned long)uaddr || len != (unsigned long)len ||
	    check_add_overflow((unsigned long)uaddr, (unsigned long)len, &end))
		return -EFAULT;
	nr = (PAGE_ALIGN(end) - start) >> PAGE_SHIFT;
	if (nr > INT_MAX)
		return -E2BIG;
	b->offset = uaddr & ~PAGE_MASK;
	b->pages = kvmalloc_array(nr, sizeof(*b->pages), GFP_KERNEL);
	if (!b->pages)
		return -ENOMEM;
	got = pin_user_pages_fast(start, (int)nr,
				  device_writes ? FOLL_WRITE : 0, b->pages);
	if (got < 0) {
		kvfree(b->pages);
		b->pages = NULL;
		return (int)got;
	}
	b->nr_pages = got;
	if (got != nr)
		return -EFAULT;	/* the caller releases what was pinned */
	return 0;
}

/* A buffer of len bytes (< PAGE_SIZE) in a page of the driver's own,
 * holding data when not NULL. */
static int vgpu_buf_kernel(struct vgpu_buf *b, const void *data, u64 len,
			   bool device_writes)
{
	struct page *page;

	b->len = len;
	b->device_writes = device_writes;
	b->pages = kvmalloc_array(1, sizeof(*b->pages), GFP_KERNEL);
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!b->pages || !page) {
		kvfree(b->pages);
		b->pages = NULL;
		if (page)
			__free_page(page);
		return -ENOMEM;
	}
	if (data)
		memcpy(page_address(page), data, len);
	b->pages[0] = page;
	b->nr_pages = 1;
	b->offset = 0;
	b->kernel_page = true;
	return 0;
}

static void vgpu_buf_release(struct vgpu_dev *vdev, struct vgpu_buf *b)
{
	struct device *dev = &vdev->pdev->dev;

	if (b->sgl)
		dma_free_coherent(dev, b->sgl_bytes, b->sgl, b->sgl_dma);
	b->sgl = NULL;
	if (b->mapped)
		dma_unmap_sgtable(dev, &b->sgt,
				  b->device_writes ? DMA_FROM_DEVICE :
						     DMA_TO_DEVICE, 0);
	b->mapped = false;
	if (b->sgt_alloc)
		sg_free_table(&b->sgt);
	b->sgt_alloc = false;
	if (b->pages && b->kernel_page) {
		__free_page(b->pages[0]);
		kvfree(b->pages);
	} else if (b->pages) {
		unpin_user_pages_dirty_lock(b->pages, b->nr_pages,
					    b->device_writes && b->dirty);
		kvfree(b->pages);
	}
	b->kernel_page = false;
	b->pages = NULL;
	b->nr_pages = 0;
}

/* Rings: the buffer as a DMA-mapped SG list the device can read. */
static int vgpu_buf_map(struct vgpu_dev *vdev, struct vgpu_buf *b)
{
	struct device *dev = &vdev->pdev->dev;
	unsigned int max_seg, i;
	struct scatterlist *sg;
	int ret;

	if (!b->len)
		return 0;
	max_seg = min_t(size_t, dma_max_mapping_size(dev), SZ_1G);
	max_seg = rounddown(max_seg, PAGE_SIZE);
	ret = sg_alloc_table_from_pages_segment(&b->sgt, b->pages, b->nr_pages,
						b->offset, b->len, max_seg,
						GFP_KERNEL);
	if (ret)
		return ret;
	b->sgt_alloc = true;
	if (b->sgt.orig_nents > vdev->max_sg) {
		dev_info_ratelimited(dev,
				     "buffer of %llu bytes in %u pieces, the device takes %u: use physically contiguous (huge page) memory\n",
				     b->len, b->sgt.orig_nents, vdev->max_sg);
		return -E2BIG;
	}
	ret = dma_map_sgtable(dev, &b->sgt,
			      b->device_writes ? DMA_FROM_DEVICE : DMA_TO_DEVICE,
			      0);
	if (ret)
		return ret;
	b->mapped = true;
	b->nents = b->sgt.nents;
	if (!b->nents || b->nents > vdev->max_sg)
		return -E2BIG;
	b->sgl_bytes = b->nents * sizeof(*b->sgl);
	b->sgl = dma_alloc_coherent(dev, b->sgl_bytes, &b->sgl_dma,
				    GFP_KERNEL);
	if (!b->sgl)
		return -ENOMEM;
	for_each_sgtable_dma_sg(&b->sgt, sg, i) {
		b->sgl[i].addr = sg_dma_address(sg);
		b->sgl[i].len = sg_dma_len(sg);
		b->sgl[i].reserved = 0;
	}
	return 0;
}

/* v1: copy between a pinned buffer and kernel memory. */
static void vgpu_buf_copy(struct vgpu_buf *b, void *kbuf, size_t len,
			  bool to_buf)
{
	size_t done = 0, off = b->offset;
	unsigned int i = 0;

	while (done < len && i < b->nr_pages) {
		size_t n = min_t(size_t, PAGE_SIZE - off, len - done);
		void *p = kmap_local_page(b->pages[i]);

		if (to_buf)
			memcpy(p + off, kbuf + done, n);
		else
			memcpy(kbuf + done, p + off, n);
		kunmap_local(p);
		done += n;
		off = 0;
		i++;
	}
	if (to_buf && done)
		b->dirty = true;
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */
/* ------------------------------------------------------------------ */

static void vgpu_req_free(struct vgpu_req *r)
{
	kfree(r);
}

/*
 * The request is finished (status, error and resp_len set): release its
 * pages and hand it to its file.  Sleeps (unpin).
 */
static void vgpu_complete(struct vgpu_dev *vdev, struct vgpu_req *r)
{
	struct vgpu_file *vf = r->vf;
	bool closed;

	if (r->status || r->error)
		r->resp_len = 0;
	else
		r->resp.dirty = r->resp.dirty || r->resp_len;
	vgpu_buf_release(vdev, &r->req);
	vgpu_buf_release(vdev, &r->resp);
	atomic_dec(&vdev->inflight);

	spin_lock(&vf->lock);
	closed = vf->closed;
	if (!closed) {
		list_add_tail(&r->node, &vf->done);
		vf->nr_done++;
	}
	spin_unlock(&vf->lock);
	wake_up_interruptible(&vf->wq);
	if (closed)
		vgpu_req_free(r);
	kref_put(&vf->kref, vgpu_file_free);
}

static void vgpu_complete_list(struct vgpu_dev *vdev, struct list_head *list)
{
	struct vgpu_req *r, *tmp;

	list_for_each_entry_safe(r, tmp, list, node) {
		list_del(&r->node);
		vgpu_complete(vdev, r);
	}
}

/* ------------------------------------------------------------------ */
/* v1: the register exchange                                           */
/* ------------------------------------------------------------------ */

/*
 * Wait until STATUS leaves the pending states (BUSY, and IDLE too when
 * a doorbell was just rung), bounded, giving up when the device goes away.
 */
static int vgpu_v1_poll(struct vgpu_dev *vdev, bool idle_pending, u32 *status)
{
	unsigned long deadline =
		jiffies + msecs_to_jiffies(VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT);
	unsigned int sleep_us = 10;
	int spins = 0;

	for (;;) {
		*status = vgpu_rd(vdev, VGPU_REG_STATUS);
		if (*status != VGPU_STATUS_BUSY &&
		    !(idle_pending && *status == VGPU_STATUS_IDLE))
			return 0;
		if (READ_ONCE(vdev->dead))
			return -ENODEV;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		if (spins++ < 20) {
			cpu_relax();
			continue;
		}
		usleep_range(sleep_us, sleep_us * 2);
		if (sleep_us < 1000)
			sleep_us *= 2;
	}
}

static void vgpu_v1_exchange(struct vgpu_dev *vdev, struct vgpu_req *r)
{
	u32 kbuf[VGPU_BUF_SIZE / 4];
	u32 status, id, rlen, i, words;
	int ret;

	/* An earlier request the driver gave up on may still be running. */
	ret = vgpu_v1_poll(vdev, false, &status);
	if (ret) {
		r->error = ret;
		return;
	}
	memset(kbuf, 0, sizeof(kbuf));
	vgpu_buf_copy(&r->req, kbuf, r->req.len, false);
	words = DIV_ROUND_UP((u32)r->req.len, 4);
	for (i = 0; i < words; i++)
		vgpu_wr(vdev, VGPU_REQ_BUF_OFFSET + 4 * i, kbuf[i]);
	id = vdev->v1_next_id++;
	vgpu_wr(vdev, VGPU_REG_REQUEST_LEN, (u32)r->req.len);
	vgpu_wr(vdev, VGPU_REG_REQUEST_ID, id);
	vgpu_wr(vdev, VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);

	ret = vgpu_v1_poll(vdev, true, &status);
	if (ret) {
		r->error = ret;
		return;
	}
	if (status == VGPU_STATUS_ERROR) {
		r->status = vgpu_rd(vdev, VGPU_REG_ERROR_CODE);
		if (!r->status)
			r->error = -EIO;
		return;
	}
	if (status != VGPU_STATUS_DONE) {
		r->error = -EIO;
		return;
	}
	if ((vdev->caps_at_probe & VGPU_CAP_REQUEST_ID) &&
	    vgpu_rd(vdev, VGPU_REG_REQUEST_ID) != id) {
		r->error = -EIO;
		return;
	}
	rlen = vgpu_rd(vdev, VGPU_REG_RESPONSE_LEN);
	if (rlen > VGPU_BUF_SIZE) {
		r->error = -EIO;
		return;
	}
	if (rlen > r->resp.len) {
		r->status = VGPU_ERR_RESPONSE_TOO_LARGE;
		return;
	}
	words = DIV_ROUND_UP(rlen, 4);
	for (i = 0; i < words; i++)
		kbuf[i] = vgpu_rd(vdev, VGPU_RESP_BUF_OFFSET + 4 * i);
	vgpu_buf_copy(&r->resp, kbuf, rlen, true);
	r->resp_len = rlen;
}

static void vgpu_v1_work(struct work_struct *work)
{
	struct vgpu_dev *vdev = container_of(work, struct vgpu_dev, v1_work);
	struct vgpu_req *r;

	for (;;) {
		mutex_lock(&vdev->lock);
		r = list_first_entry_or_null(&vdev->v1_pending,
					     struct vgpu_req, node);
		if (r)
			list_del(&r->node);
		mutex_unlock(&vdev->lock);
		if (!r)
			return;
		if (READ_ONCE(vdev->dead))
			r->error = -ENODEV;
		else
			vgpu_v1_exchange(vdev, r);
		vgpu_complete(vdev, r);
	}
}

/* ------------------------------------------------------------------ */
/* v2: rings                                                           */
/* ------------------------------------------------------------------ */

static u32 vgpu_ring_status(struct vgpu_dev *vdev)
{
	return vgpu_rd(vdev, VGPU_REG_RING_STATUS);
}

/* Start the rings afresh (stopped, zeroed, registers set, enabled). */
static int vgpu_ring_start(struct vgpu_dev *vdev)
{
	u32 st;

	lockdep_assert_held(&vdev->lock);
	vgpu_wr(vdev, VGPU_REG_RING_CTRL, 0);
	memset(vdev->cq, 0, vdev->depth * sizeof(*vdev->cq));
	memset(vdev->sq, 0, vdev->depth * sizeof(*vdev->sq));
	if (vdev->dbbuf)
		memset(vdev->dbbuf, 0, sizeof(*vdev->dbbuf));
	vdev->sq_tail = 0;
	vdev->cq_head = 0;
	vdev->cq_phase = VGPU_CQE_PHASE;
	vgpu_wr(vdev, VGPU_REG_SQ_BASE_LO, lower_32_bits(vdev->sq_dma));
	vgpu_wr(vdev, VGPU_REG_SQ_BASE_HI, upper_32_bits(vdev->sq_dma));
	vgpu_wr(vdev, VGPU_REG_CQ_BASE_LO, lower_32_bits(vdev->cq_dma));
	vgpu_wr(vdev, VGPU_REG_CQ_BASE_HI, upper_32_bits(vdev->cq_dma));
	vgpu_wr(vdev, VGPU_REG_SQ_SIZE, vdev->depth);
	vgpu_wr(vdev, VGPU_REG_CQ_SIZE, vdev->depth);
	vgpu_wr(vdev, VGPU_REG_DBBUF_LO,
		vdev->dbbuf ? lower_32_bits(vdev->dbbuf_dma) : 0);
	vgpu_wr(vdev, VGPU_REG_DBBUF_HI,
		vdev->dbbuf ? upper_32_bits(vdev->dbbuf_dma) : 0);
	if (vdev->caps_at_probe & VGPU_CAP_IRQ_COALESCE)
		vgpu_wr(vdev, VGPU_REG_IRQ_COALESCE, irq_coalesce);
	vgpu_wr(vdev, VGPU_REG_IRQ_CTRL,
		vdev->irq_mode == VGPU_DRIVER_IRQ_MSIX ?
			VGPU_IRQ_CQ | VGPU_IRQ_EVENT : 0);
	vgpu_wr(vdev, VGPU_REG_RING_CTRL, VGPU_RING_CTRL_ENABLE);
	st = vgpu_ring_status(vdev);
	if (!(st & VGPU_RING_STATUS_READY)) {
		dev_err(&vdev->pdev->dev,
			"rings refused: RING_STATUS 0x%08x (%s)\n", st,
			vgpu_error_name(VGPU_RING_STATUS_CODE(st)));
		vgpu_wr(vdev, VGPU_REG_RING_CTRL, 0);
		vdev->rings_ok = false;
		return -EIO;
	}
	vdev->rings_ok = true;
	return 0;
}

/*
 * Stop the rings and take every request in flight off them, failing with
 * error, onto list.  After RING_CTRL is 0 the device writes nothing more.
 */
static void vgpu_ring_stop(struct vgpu_dev *vdev, int error,
			   struct list_head *list)
{
	u32 i;

	lockdep_assert_held(&vdev->lock);
	vgpu_wr(vdev, VGPU_REG_RING_CTRL, 0);
	(void)vgpu_ring_status(vdev); /* the write has reached the device */
	vdev->rings_ok = false;
	for (i = 0; i < vdev->depth; i++) {
		struct vgpu_req *r = vdev->slots[i];

		if (!r)
			continue;
		vdev->slots[i] = NULL;
		r->error = error;
		list_add_tail(&r->node, list);
	}
	vdev->nr_busy = 0;
	wake_up_all(&vdev->slot_wq);
}

/* Take the new CQ entries; finished requests go onto list. */
static void vgpu_ring_reap(struct vgpu_dev *vdev, struct list_head *list)
{
	u32 n = 0;

	lockdep_assert_held(&vdev->lock);
	if (!vdev->rings_ok)
		return;
	while (n < vdev->depth) {
		struct vgpu_cqe *cqe = &vdev->cq[vdev->cq_head];
		u32 tag, status, rlen;
		struct vgpu_req *r;

		if ((READ_ONCE(cqe->flags) & VGPU_CQE_PHASE) != vdev->cq_phase)
			break;
		dma_rmb();
		tag = READ_ONCE(cqe->tag);
		status = READ_ONCE(cqe->status);
		rlen = READ_ONCE(cqe->resp_len);
		if (++vdev->cq_head == vdev->depth) {
			vdev->cq_head = 0;
			vdev->cq_phase ^= VGPU_CQE_PHASE;
		}
		n++;
		if (tag >= vdev->depth || !vdev->slots[tag]) {
			atomic64_inc(&vdev->stray_cqes);
			dev_warn_ratelimited(&vdev->pdev->dev,
					     "completion for unknown tag %u ignored\n",
					     tag);
			continue;
		}
		r = vdev->slots[tag];
		vdev->slots[tag] = NULL;
		vdev->nr_busy--;
		vdev->reaped++;
		r->status = status;
		if (!status && rlen > r->resp.len)
			r->error = -EIO;
		else if (!status)
			r->resp_len = rlen;
		list_add_tail(&r->node, list);
	}
	if (!n)
		return;
	if (vdev->dbbuf) {
		WRITE_ONCE(vdev->dbbuf->cq_head, vdev->cq_head);
		WRITE_ONCE(vdev->dbbuf->cq_event_idx, vdev->cq_head);
		mb(); /* the device sees the new head before we look again */
	} else {
		vgpu_wr(vdev, VGPU_REG_CQ_HEAD_DB, vdev->cq_head);
	}
	wake_up_all(&vdev->slot_wq);
}

static void vgpu_ring_kick_poll(struct vgpu_dev *vdev, unsigned long delay)
{
	mod_delayed_work(system_wq, &vdev->poll_work, delay);
}

/*
 * Polling (no MSI-X) and the watchdog (both modes): reap, fail what is
 * past its deadline by resetting the rings, re-arm while work is in flight.
 */
static void vgpu_ring_poll_work(struct work_struct *work)
{
	struct vgpu_dev *vdev =
		container_of(to_delayed_work(work), struct vgpu_dev, poll_work);
	LIST_HEAD(done);
	bool expired = false;
	u32 i;

	mutex_lock(&vdev->lock);
	if (vdev->dead) {
		mutex_unlock(&vdev->lock);
		return;
	}
	vgpu_ring_reap(vdev, &done);
	for (i = 0; i < vdev->depth && vdev->nr_busy; i++)
		if (vdev->slots[i] &&
		    time_after(jiffies, vdev->slots[i]->deadline))
			expired = true;
	if (vdev->rings_ok && vdev->nr_busy &&
	    !(vgpu_ring_status(vdev) & VGPU_RING_STATUS_READY)) {
		dev_err(&vdev->pdev->dev, "rings stopped by the device\n");
		vgpu_ring_stop(vdev, -EIO, &done);
		vgpu_ring_start(vdev);
	} else if (expired) {
		dev_err(&vdev->pdev->dev,
			"request without completion after %u ms: resetting the rings\n",
			timeout_ms);
		vgpu_ring_stop(vdev, -ETIMEDOUT, &done);
		vgpu_ring_start(vdev);
	}
	/*
	 * No progress since the last look with a doorbell buffer: ring the
	 * real SQ doorbell once (it only says "look at the shadows"), in case
	 * the device went idle before it saw the shadow head or tail.
	 */
	if (vdev->rings_ok && vdev->nr_busy && vdev->dbbuf &&
	    vdev->irq_mode == VGPU_DRIVER_IRQ_MSIX &&
	    vdev->reaped == vdev->reaped_seen)
		vgpu_wr(vdev, VGPU_REG_SQ_TAIL_DB, vdev->sq_tail);
	vdev->reaped_seen = vdev->reaped;
	if (vdev->nr_busy)
		vgpu_ring_kick_poll(vdev, vdev->irq_mode == VGPU_DRIVER_IRQ_MSIX ?
					  HZ : 1);
	mutex_unlock(&vdev->lock);
	vgpu_complete_list(vdev, &done);
}

static irqreturn_t vgpu_irq_cq(int irq, void *data)
{
	struct vgpu_dev *vdev = data;
	LIST_HEAD(done);

	mutex_lock(&vdev->lock);
	if (!vdev->dead)
		vgpu_ring_reap(vdev, &done);
	mutex_unlock(&vdev->lock);
	vgpu_complete_list(vdev, &done);
	return IRQ_HANDLED;
}

static irqreturn_t vgpu_irq_event(int irq, void *data)
{
	struct vgpu_dev *vdev = data;
	u32 st;

	mutex_lock(&vdev->lock);
	if (!vdev->dead) {
		st = vgpu_rd(vdev, VGPU_REG_IRQ_STATUS);
		vgpu_wr(vdev, VGPU_REG_IRQ_STATUS, st);
		dev_info(&vdev->pdev->dev, "device event (IRQ_STATUS 0x%x)\n",
			 st);
		if (vdev->nr_busy)
			vgpu_ring_kick_poll(vdev, 0);
	}
	mutex_unlock(&vdev->lock);
	return IRQ_HANDLED;
}

static irqreturn_t vgpu_irq_hard(int irq, void *data)
{
	return IRQ_WAKE_THREAD;
}

/* Put a prepared request on the SQ.  Called with lock held, a slot free. */
static void vgpu_ring_submit(struct vgpu_dev *vdev, struct vgpu_req *r)
{
	struct vgpu_sqe *sqe;
	u32 slot, old, tail;

	for (slot = 0; slot < vdev->depth; slot++)
		if (!vdev->slots[slot])
			break;
	vdev->slots[slot] = r;
	vdev->nr_busy++;
	r->slot = slot;
	r->deadline = jiffies + msecs_to_jiffies(timeout_ms);

	sqe = &vdev->sq[vdev->sq_tail];
	sqe->tag = slot;
	sqe->flags = 0;
	sqe->req_sg_count = r->req.nents;
	sqe->resp_sg_count = r->resp.nents;
	sqe->req_sg_addr = r->req.sgl ? r->req.sgl_dma : 0;
	sqe->resp_sg_addr = r->resp.sgl ? r->resp.sgl_dma : 0;
	sqe->req_len = r->req.len;
	sqe->resp_cap = r->resp.len;
	sqe->reserved[0] = 0;
	sqe->reserved[1] = 0;

	old = vdev->sq_tail;
	tail = (old + 1) & (vdev->depth - 1);
	vdev->sq_tail = tail;
	if (vdev->dbbuf) {
		dma_wmb(); /* the entry before the shadow tail */
		WRITE_ONCE(vdev->dbbuf->sq_tail, tail);
		mb(); /* the shadow tail before the event index is read */
		if (vgpu_ring_need_event(READ_ONCE(vdev->dbbuf->sq_event_idx),
					 tail, old, vdev->depth))
			vgpu_wr(vdev, VGPU_REG_SQ_TAIL_DB, tail);
	} else {
		vgpu_wr(vdev, VGPU_REG_SQ_TAIL_DB, tail); /* writel orders */
	}
	if (vdev->irq_mode == VGPU_DRIVER_IRQ_POLL)
		vgpu_ring_kick_poll(vdev, 0);
	else if (!delayed_work_pending(&vdev->poll_work))
		vgpu_ring_kick_poll(vdev, HZ);
}

static void vgpu_ring_free(struct vgpu_dev *vdev)
{
	struct device *dev = &vdev->pdev->dev;

	if (vdev->sq)
		dma_free_coherent(dev, vdev->depth * sizeof(*vdev->sq), vdev->sq,
				  vdev->sq_dma);
	if (vdev->cq)
		dma_free_coherent(dev, vdev->depth * sizeof(*vdev->cq), vdev->cq,
				  vdev->cq_dma);
	if (vdev->dbbuf)
		dma_free_coherent(dev, sizeof(*vdev->dbbuf), vdev->dbbuf,
				  vdev->dbbuf_dma);
	vdev->sq = NULL;
	vdev->cq = NULL;
	vdev->dbbuf = NULL;
	kfree(vdev->slots);
	vdev->slots = NULL;
}

static void vgpu_irq_teardown(struct vgpu_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;

	if (vdev->nvec <= 0)
		return;
	free_irq(pci_irq_vector(pdev, VGPU_MSIX_VEC_CQ), vdev);
	if (vdev->nvec > 1)
		free_irq(pci_irq_vector(pdev, VGPU_MSIX_VEC_EVENT), vdev);
	pci_free_irq_vectors(pdev);
	vdev->nvec = 0;
}

static int vgpu_irq_setup(struct vgpu_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	int nvec, ret;

	nvec = pci_alloc_irq_vectors(pdev, 1, VGPU_MSIX_VECTORS, PCI_IRQ_MSIX);
	if (nvec < 0)
		return nvec;
	ret = request_threaded_irq(pci_irq_vector(pdev, VGPU_MSIX_VEC_CQ),
				   vgpu_irq_hard, vgpu_irq_cq, 0, vdev->name,
				   vdev);
	if (ret)
		goto err_free_vectors;
	vdev->nvec = 1;
	if (nvec > 1 &&
	    !request_threaded_irq(pci_irq_vector(pdev, VGPU_MSIX_VEC_EVENT),
				  vgpu_irq_hard, vgpu_irq_event, 0, vdev->name,
				  vdev))
		vdev->nvec = 2;
	return 0;

err_free_vectors:
	pci_free_irq_vectors(pdev);
	return ret;
}

/* Set up the rings on a v2 device; on failure the v1 path is used. */
static int vgpu_ring_setup(struct vgpu_dev *vdev)
{
	struct device *dev = &vdev->pdev->dev;
	u64 xfer;
	u32 sg;
	int ret;

	xfer = vgpu_rd(vdev, VGPU_REG_MAX_XFER_LO) |
	       (u64)vgpu_rd(vdev, VGPU_REG_MAX_XFER_HI) << 32;
	sg = vgpu_rd(vdev, VGPU_REG_MAX_SG);
	if (!xfer || !sg) {
		dev_warn(dev, "rings: MAX_XFER %llu, MAX_SG %u: not usable\n",
			 xfer, sg);
		return -EINVAL;
	}
	vdev->max_xfer = min_t(u64, xfer, VGPU_XFER_LIMIT);
	vdev->max_sg = min_t(u32, sg, VGPU_SG_MAX_ENTRIES);

	vdev->depth = clamp_t(u32, queue_depth, 4, VGPU_RING_MAX_ENTRIES);
	vdev->depth = rounddown_pow_of_two(vdev->depth);
	/*
	 * The device takes an SQ entry only while fewer than CQ_SIZE - 1 of
	 * its completions are taken or unread.  With at most CQ_SIZE - 2
	 * requests in flight, whatever the SQ holds always has room, so no
	 * entry waits there for a CQ head the device has not seen.
	 */
	vdev->max_busy = vdev->depth - 2;
	vdev->slots = kcalloc(vdev->depth, sizeof(*vdev->slots), GFP_KERNEL);
	vdev->sq = dma_alloc_coherent(dev, vdev->depth * sizeof(*vdev->sq),
				      &vdev->sq_dma, GFP_KERNEL);
	vdev->cq = dma_alloc_coherent(dev, vdev->depth * sizeof(*vdev->cq),
				      &vdev->cq_dma, GFP_KERNEL);
	if (vdev->caps_at_probe & VGPU_CAP_DBBUF)
		vdev->dbbuf = dma_alloc_coherent(dev, sizeof(*vdev->dbbuf),
						 &vdev->dbbuf_dma, GFP_KERNEL);
	if (!vdev->slots || !vdev->sq || !vdev->cq) {
		ret = -ENOMEM;
		goto err_free;
	}

	vdev->irq_mode = VGPU_DRIVER_IRQ_POLL;
	if (use_msix && (vdev->caps_at_probe & VGPU_CAP_MSIX)) {
		ret = vgpu_irq_setup(vdev);
		if (ret)
			dev_warn(dev, "MSI-X not available (%d): polling\n", ret);
		else
			vdev->irq_mode = VGPU_DRIVER_IRQ_MSIX;
	}

	mutex_lock(&vdev->lock);
	ret = vgpu_ring_start(vdev);
	mutex_unlock(&vdev->lock);
	if (ret)
		goto err_irq;
	vdev->path = VGPU_DRIVER_PATH_RINGS;
	return 0;

err_irq:
	vgpu_irq_teardown(vdev);
err_free:
	vgpu_ring_free(vdev);
	vdev->irq_mode = VGPU_DRIVER_IRQ_POLL;
	return ret;
}

/* ------------------------------------------------------------------ */
/* File operations                                                     */
/* ------------------------------------------------------------------ */

static int vgpu_open(struct inode *inode, struct file *file)
{
	struct miscdevice *misc = file->private_data;
	struct vgpu_dev *vdev = container_of(misc, struct vgpu_dev, misc);
	struct vgpu_file *vf;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return -ENOMEM;
	kref_init(&vf->kref);
	spin_lock_init(&vf->lock);
	INIT_LIST_HEAD(&vf->done);
	init_waitqueue_head(&vf->wq);
	vf->vdev = vdev;

	mutex_lock(&vdev->lock);
	if (vdev->dead) {
		mutex_unlock(&vdev->lock);
		kfree(vf);
		return -ENODEV;
	}
	kref_get(&vdev->kref);
	list_add_tail(&vf->node, &vdev->files);
	mutex_unlock(&vdev->lock);
	file->private_data = vf;
	return nonseekable_open(inode, file);
}

/*
 * The file that asked for a session id is being released: queue the
 * protocol v3 SESSION_END of that id (vgpu/rpc.h), in the driver's own
 * pages, so that the host frees the CUDA contexts its process made.  Its
 * completion is freed like any of a closed file.  Best effort: a device
 * that is gone or full is told nothing, and the host frees the VM's
 * objects when the VM goes.
 */
static int vgpu_ring_wait_slot(struct vgpu_dev *vdev);

/*
 * Hand a request whose buffers are filled in to the device: map them for
 * the rings, wait for a ring slot (or queue it for the v1 worker), and
 * give it to vf.  0, or -errno with the buffers the caller's to release.
 */
static int vgpu_queue(struct vgpu_dev *vdev, struct vgpu_file *vf,
		      struct vgpu_req *r, u32 path)
{
	int ret = 0;

	if (path == VGPU_DRIVER_PATH_RINGS) {
		ret = vgpu_buf_map(vdev, &r->req);
		if (!ret)
			ret = vgpu_buf_map(vdev, &r->resp);
	}
	if (ret)
		return ret;
	mutex_lock(&vdev->lock);
	ret = vdev->dead ? -ENODEV : 0;
	if (!ret && path == VGPU_DRIVER_PATH_RINGS)
		ret = vgpu_ring_wait_slot(vdev);
	if (ret) {
		mutex_unlock(&vdev->lock);
		return ret;
	}
	kref_get(&vf->kref);
	r->vf = vf;
	atomic_inc(&vdev->inflight);
	if (path == VGPU_DRIVER_PATH_RINGS) {
		vgpu_ring_submit(vdev, r);
	} else {
		list_add_tail(&r->node, &vdev->v1_pending);
		queue_work(system_unbound_wq, &vdev->v1_work);
	}
	mutex_unlock(&vdev->lock);
	return 0;
}

static void vgpu_send_session_end(struct vgpu_file *vf)
{
	struct vgpu_dev *vdev = vf->vdev;
	u8 msg[sizeof(struct vgpu_req_hdr) + sizeof(struct vgpu_rpc_call) + 8];
	u64 resp_len = sizeof(struct vgpu_resp_hdr) + sizeof(struct vgpu_rpc_ret);
	struct vgpu_req *r;
	u32 path = READ_ONCE(vdev->path);
	int ret;

	vgpu_put_le32(msg, VGPU_OP_CUDA);
	vgpu_put_le32(msg + 4, 1);
	vgpu_put_le32(msg + 8, VGPU_RPC_SESSION_END);
	vgpu_put_le32(msg + 12, VGPU_RPC_ARGS_SESSION_END);
	vgpu_put_le64(msg + 16, vf->session);

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return;
	ret = vgpu_buf_kernel(&r->req, msg, sizeof(msg), false);
	if (!ret)
		ret = vgpu_buf_kernel(&r->resp, NULL, resp_len, true);
	if (!ret)
		ret = vgpu_queue(vdev, vf, r, path);
	if (ret)
		goto err;
	return;
err:
	vgpu_buf_release(vdev, &r->req);
	vgpu_buf_release(vdev, &r->resp);
	kfree(r);
}

static int vgpu_release(struct inode *inode, struct file *file)
{
	struct vgpu_file *vf = file->private_data;
	struct vgpu_dev *vdev = vf->vdev;
	struct vgpu_req *r, *tmp;
	LIST_HEAD(done);

	if (vf->session)
		vgpu_send_session_end(vf);
	mutex_lock(&vdev->lock);
	list_del(&vf->node);
	mutex_unlock(&vdev->lock);

	/* Requests still in flight are freed when they complete. */
	spin_lock(&vf->lock);
	vf->closed = true;
	list_splice_init(&vf->done, &done);
	vf->nr_done = 0;
	spin_unlock(&vf->lock);
	list_for_each_entry_safe(r, tmp, &done, node)
		vgpu_req_free(r);
	kref_put(&vf->kref, vgpu_file_free);
	return 0;
}

static long vgpu_ioctl_info(struct vgpu_dev *vdev, void __user *arg)
{
	struct vgpu_ioctl_info info;
	char pool[VGPU_POOL_NAME_SIZE];
	int state;

	memset(&info, 0, sizeof(info));
	mutex_lock(&vdev->lock);
	if (vdev->dead) {
		mutex_unlock(&vdev->lock);
		return -ENODEV;
	}
	info.protocol_version = vgpu_rd(vdev, VGPU_REG_PROTOCOL_VER);
	info.caps = vgpu_rd(vdev, VGPU_REG_CAPABILITIES);
	info.priority = vgpu_rd(vdev, VGPU_REG_PRIORITY);
	info.vm_id = vgpu_rd(vdev, VGPU_REG_VM_ID);
	vgpu_read_pool(vdev, info.caps, pool, &state);
	mutex_unlock(&vdev->lock);
	/* Not a valid name: the raw bytes are not passed on. */
	vgpu_pool_name_pack(info.pool, state > 0 ? pool : "");
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long vgpu_ioctl_session(struct vgpu_file *vf, void __user *arg)
{
	struct vgpu_dev *vdev = vf->vdev;
	struct vgpu_ioctl_session s;

	if (READ_ONCE(vdev->dead))
		return -ENODEV;
	spin_lock(&vf->lock);
	if (!vf->session)
		vf->session = (u64)vdev->session_nonce << 32 |
			      (u32)atomic_inc_return(&vdev->next_session);
	memset(&s, 0, sizeof(s));
	s.id = vf->session;
	spin_unlock(&vf->lock);
	return copy_to_user(arg, &s, sizeof(s)) ? -EFAULT : 0;
}

static long vgpu_ioctl_driver_info(struct vgpu_dev *vdev, void __user *arg)
{
	struct vgpu_ioctl_driver_info di;

	memset(&di, 0, sizeof(di));
	mutex_lock(&vdev->lock);
	if (vdev->dead) {
		mutex_unlock(&vdev->lock);
		return -ENODEV;
	}
	di.path = vdev->path;
	di.irq = vdev->irq_mode;
	di.max_xfer = vdev->max_xfer;
	di.max_sg = vdev->path == VGPU_DRIVER_PATH_RINGS ? vdev->max_sg : 0;
	di.max_inflight = max_inflight;
	di.queue_depth = vdev->path == VGPU_DRIVER_PATH_RINGS ? vdev->depth : 1;
	mutex_unlock(&vdev->lock);
	return copy_to_user(arg, &di, sizeof(di)) ? -EFAULT : 0;
}

/* Wait for a free ring slot; lock held on entry and on return. */
static int vgpu_ring_wait_slot(struct vgpu_dev *vdev)
{
	long left = msecs_to_jiffies(timeout_ms);

	while (!vdev->dead && vdev->rings_ok &&
	       vdev->nr_busy >= vdev->max_busy) {
		mutex_unlock(&vdev->lock);
		left = wait_event_interruptible_timeout(vdev->slot_wq,
			READ_ONCE(vdev->nr_busy) < vdev->max_busy ||
			READ_ONCE(vdev->dead), left);
		mutex_lock(&vdev->lock);
		if (left < 0)
			return (int)left;
		if (!left)
			return -EAGAIN;
	}
	if (vdev->dead)
		return -ENODEV;
	if (!vdev->rings_ok)
		return -EIO;
	return 0;
}

static long vgpu_ioctl_submit(struct vgpu_file *vf, void __user *arg)
{
	struct vgpu_dev *vdev = vf->vdev;
	struct vgpu_ioctl_submit s;
	struct vgpu_req *r;
	u64 max_xfer, resp_pin;
	u32 path;
	int ret;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (s.flags || s.reserved)
		return -EINVAL;
	if (s.req_len < sizeof(struct vgpu_req_hdr))
		return -EINVAL;
	path = READ_ONCE(vdev->path);
	max_xfer = READ_ONCE(vdev->max_xfer);
	if (s.req_len > max_xfer)
		return -E2BIG;
	resp_pin = s.resp_cap;
	if (path == VGPU_DRIVER_PATH_V1)
		resp_pin = min_t(u64, s.resp_cap, VGPU_BUF_SIZE);
	else if (s.resp_cap > max_xfer)
		return -E2BIG;

	spin_lock(&vf->lock);
	if (vf->outstanding >= max_inflight) {
		spin_unlock(&vf->lock);
		return -EAGAIN;
	}
	vf->outstanding++;
	spin_unlock(&vf->lock);

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		ret = -ENOMEM;
		goto err_unreserve;
	}
	r->tag = s.tag;
	ret = vgpu_buf_pin(&r->req, s.req_addr, s.req_len, false);
	if (!ret)
		ret = vgpu_buf_pin(&r->resp, s.resp_addr, resp_pin, true);
	if (!ret)
		ret = vgpu_queue(vdev, vf, r, path);
	if (ret)
		goto err_release;
	return 0;

err_release:
	vgpu_buf_release(vdev, &r->req);
	vgpu_buf_release(vdev, &r->resp);
	kfree(r);
err_unreserve:
	spin_lock(&vf->lock);
	vf->outstanding--;
	spin_unlock(&vf->lock);
	return ret;
}

static bool vgpu_file_ready(struct vgpu_file *vf, u32 want)
{
	bool ready;

	spin_lock(&vf->lock);
	ready = vf->nr_done >= min(want, vf->outstanding);
	spin_unlock(&vf->lock);
	return ready;
}

static long vgpu_ioctl_wait(struct vgpu_file *vf, void __user *arg)
{
	struct vgpu_ioctl_wait w;
	struct vgpu_ioctl_completion c;
	struct vgpu_ioctl_completion __user *ucomps;
	struct vgpu_req *r;
	long left;
	int ret = 0;

	if (copy_from_user(&w, arg, sizeof(w)))
		return -EFAULT;
	if (w.reserved || w.min_count > w.max_count)
		return -EINVAL;
	ucomps = u64_to_user_ptr(w.comps_addr);
	if (w.min_count) {
		left = msecs_to_jiffies(w.timeout_ms ? w.timeout_ms :
					VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT);
		left = wait_event_interruptible_timeout(vf->wq,
			vgpu_file_ready(vf, w.min_count), left);
		if (left < 0)
			return left;
	}
	w.count = 0;
	while (w.count < w.max_count) {
		spin_lock(&vf->lock);
		r = list_first_entry_or_null(&vf->done, struct vgpu_req, node);
		if (r) {
			list_del(&r->node);
			vf->nr_done--;
		}
		spin_unlock(&vf->lock);
		if (!r)
			break;
		memset(&c, 0, sizeof(c));
		c.tag = r->tag;
		c.status = r->status;
		c.error = r->error;
		c.resp_len = r->resp_len;
		if (copy_to_user(&ucomps[w.count], &c, sizeof(c))) {
			spin_lock(&vf->lock);
			list_add(&r->node, &vf->done);
			vf->nr_done++;
			spin_unlock(&vf->lock);
			ret = -EFAULT;
			break;
		}
		vgpu_req_free(r);
		spin_lock(&vf->lock);
		vf->outstanding--;
		spin_unlock(&vf->lock);
		w.count++;
	}
	spin_lock(&vf->lock);
	w.inflight = vf->outstanding;
	spin_unlock(&vf->lock);
	if (copy_to_user(arg, &w, sizeof(w)))
		return -EFAULT;
	return ret;
}

static long vgpu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vgpu_file *vf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VGPU_IOCTL_INFO:
		return vgpu_ioctl_info(vf->vdev, uarg);
	case VGPU_IOCTL_DRIVER_INFO:
		return vgpu_ioctl_driver_info(vf->vdev, uarg);
	case VGPU_IOCTL_SUBMIT:
		return vgpu_ioctl_submit(vf, uarg);
	case VGPU_IOCTL_WAIT:
		return vgpu_ioctl_wait(vf, uarg);
	case VGPU_IOCTL_SESSION:
		return vgpu_ioctl_session(vf, uarg);
	default:
		return -ENOTTY;
	}
}

static __poll_t vgpu_poll(struct file *file, poll_table *wait)
{
	struct vgpu_file *vf = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &vf->wq, wait);
	spin_lock(&vf->lock);
	if (vf->nr_done)
		mask |= EPOLLIN | EPOLLRDNORM;
	else if (READ_ONCE(vf->vdev->dead) && !vf->outstanding)
		mask |= EPOLLHUP;
	spin_unlock(&vf->lock);
	return mask;
}

static const struct file_operations vgpu_fops = {
	.owner = THIS_MODULE,
	.open = vgpu_open,
	.release = vgpu_release,
	.unlocked_ioctl = vgpu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = vgpu_poll,
	.llseek = no_llseek,
};

/* ------------------------------------------------------------------ */
/* sysfs: /sys/class/misc/vgpuN/ (read from the registers each time)   */
/* ------------------------------------------------------------------ */

static struct vgpu_dev *to_vgpu(struct device *dev)
{
	struct miscdevice *misc = dev_get_drvdata(dev);

	return container_of(misc, struct vgpu_dev, misc);
}

static ssize_t pool_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct vgpu_dev *vdev = to_vgpu(dev);
	char name[VGPU_POOL_NAME_SIZE];
	int state;

	vgpu_read_pool(vdev, vgpu_rd(vdev, VGPU_REG_CAPABILITIES), name, &state);
	return sysfs_emit(buf, "%s\n", state > 0 ? name : "");
}
static DEVICE_ATTR_RO(pool);

static ssize_t priority_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  vgpu_priority_name(vgpu_rd(to_vgpu(dev),
						     VGPU_REG_PRIORITY)));
}
static DEVICE_ATTR_RO(priority);

static ssize_t vm_id_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%u\n", vgpu_rd(to_vgpu(dev), VGPU_REG_VM_ID));
}
static DEVICE_ATTR_RO(vm_id);

static ssize_t protocol_version_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	u32 v = vgpu_rd(to_vgpu(dev), VGPU_REG_PROTOCOL_VER);

	return sysfs_emit(buf, "%u.%u\n", VGPU_VERSION_MAJOR(v),
			  VGPU_VERSION_MINOR(v));
}
static DEVICE_ATTR_RO(protocol_version);

static ssize_t caps_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "0x%08x\n",
			  vgpu_rd(to_vgpu(dev), VGPU_REG_CAPABILITIES));
}
static DEVICE_ATTR_RO(caps);

static ssize_t path_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct vgpu_dev *vdev = to_vgpu(dev);

	if (vdev->path == VGPU_DRIVER_PATH_RINGS)
		return sysfs_emit(buf, "rings %s\n",
				  vdev->irq_mode == VGPU_DRIVER_IRQ_MSIX ?
					  "msix" : "poll");
	return sysfs_emit(buf, "v1\n");
}
static DEVICE_ATTR_RO(path);

static ssize_t inflight_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&to_vgpu(dev)->inflight));
}
static DEVICE_ATTR_RO(inflight);

static ssize_t max_xfer_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%llu\n", to_vgpu(dev)->max_xfer);
}
static DEVICE_ATTR_RO(max_xfer);

/* Completions that named no request in flight: 0 unless something is off. */
static ssize_t stray_completions_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  (long long)atomic64_read(&to_vgpu(dev)->stray_cqes));
}
static DEVICE_ATTR_RO(stray_completions);

static struct attribute *vgpu_attrs[] = {
	&dev_attr_pool.attr,
	&dev_attr_priority.attr,
	&dev_attr_vm_id.attr,
	&dev_attr_protocol_version.attr,
	&dev_attr_caps.attr,
	&dev_attr_path.attr,
	&dev_attr_inflight.attr,
	&dev_attr_max_xfer.attr,
	&dev_attr_stray_completions.attr,
	NULL,
};
ATTRIBUTE_GROUPS(vgpu);

/* ------------------------------------------------------------------ */
/* PCI                                                                 */
/* ------------------------------------------------------------------ */

static int vgpu_probe(struct pci_dev *pdev, const struct pci_device_id *ent)
{
	struct device *dev = &pdev->dev;
	struct vgpu_dev *vdev;
	u32 ver;
	int ret;

	vdev = kzalloc(sizeof(*vdev), GFP_KERNEL);
	if (!vdev)
		return -ENOMEM;
	kref_init(&vdev->kref);
	vdev->session_nonce = get_random_u32();
	vdev->pdev = pdev;
	mutex_init(&vdev->lock);
	INIT_LIST_HEAD(&vdev->files);
	INIT_LIST_HEAD(&vdev->v1_pending);
	INIT_WORK(&vdev->v1_work, vgpu_v1_work);
	INIT_DELAYED_WORK(&vdev->poll_work, vgpu_ring_poll_work);
	init_waitqueue_head(&vdev->slot_wq);
	atomic_set(&vdev->inflight, 0);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	ret = pci_request_regions(pdev, DRV_NAME);
	if (ret)
		goto err_disable;
	if (pci_resource_len(pdev, 0) < VGPU_BAR0_SIZE) {
		dev_err(dev, "BAR0 is %llu bytes, need %u\n",
			(u64)pci_resource_len(pdev, 0), VGPU_BAR0_SIZE);
		ret = -ENODEV;
		goto err_regions;
	}
	vdev->bar0 = pci_iomap(pdev, 0, VGPU_BAR0_SIZE);
	if (!vdev->bar0) {
		ret = -ENOMEM;
		goto err_regions;
	}
	pci_set_drvdata(pdev, vdev);

	ver = vgpu_rd(vdev, VGPU_REG_PROTOCOL_VER);
	vdev->caps_at_probe = vgpu_rd(vdev, VGPU_REG_CAPABILITIES);
	vdev->path = VGPU_DRIVER_PATH_V1;
	vdev->irq_mode = VGPU_DRIVER_IRQ_POLL;
	vdev->max_xfer = VGPU_BUF_SIZE;
	vdev->v1_next_id = (u32)get_random_u32() | 1u;

	ret = ida_alloc(&vgpu_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_iounmap;
	vdev->id = ret;
	snprintf(vdev->name, sizeof(vdev->name), DRV_NAME "%d", vdev->id);

	if (use_rings && VGPU_VERSION_MAJOR(ver) >= VGPU_PROTOCOL_V2_MAJOR &&
	    (vdev->caps_at_probe & VGPU_CAP_RINGS)) {
		ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
		if (ret)
			ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32));
		if (!ret) {
			pci_set_master(pdev);
			ret = vgpu_ring_setup(vdev);
		}
		if (ret) {
			dev_warn(dev, "rings not usable (%d): v1 registers\n",
				 ret);
			vdev->max_xfer = VGPU_BUF_SIZE;
			pci_clear_master(pdev);
		}
	}

	vdev->misc.minor = MISC_DYNAMIC_MINOR;
	vdev->misc.name = vdev->name;
	vdev->misc.fops = &vgpu_fops;
	vdev->misc.parent = dev;
	vdev->misc.groups = vgpu_groups;
	ret = misc_register(&vdev->misc);
	if (ret)
		goto err_rings;

	dev_info(dev, "/dev/%s: protocol %u.%u, caps 0x%08x, %s\n", vdev->name,
		 VGPU_VERSION_MAJOR(ver), VGPU_VERSION_MINOR(ver),
		 vdev->caps_at_probe,
		 vdev->path == VGPU_DRIVER_PATH_RINGS ?
			 (vdev->irq_mode == VGPU_DRIVER_IRQ_MSIX ?
				  "v2 rings, MSI-X" : "v2 rings, polling") :
			 "v1 registers");
	return 0;

err_rings:
	if (vdev->path == VGPU_DRIVER_PATH_RINGS) {
		mutex_lock(&vdev->lock);
		vgpu_wr(vdev, VGPU_REG_RING_CTRL, 0);
		mutex_unlock(&vdev->lock);
		vgpu_irq_teardown(vdev);
		vgpu_ring_free(vdev);
	}
	ida_free(&vgpu_ida, vdev->id);
err_iounmap:
	pci_iounmap(pdev, vdev->bar0);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_free:
	kfree(vdev);
	return ret;
}

static void vgpu_remove(struct pci_dev *pdev)
{
	struct vgpu_dev *vdev = pci_get_drvdata(pdev);
	struct vgpu_file *vf;
	struct vgpu_req *r, *tmp;
	LIST_HEAD(done);

	/* No new opens, no sysfs reads from here on. */
	misc_deregister(&vdev->misc);

	mutex_lock(&vdev->lock);
	vdev->dead = true;
	mutex_unlock(&vdev->lock);
	wake_up_all(&vdev->slot_wq);

	if (vdev->path == VGPU_DRIVER_PATH_RINGS) {
		vgpu_irq_teardown(vdev);
		cancel_delayed_work_sync(&vdev->poll_work);
		mutex_lock(&vdev->lock);
		vgpu_ring_stop(vdev, -ENODEV, &done);
		vgpu_wr(vdev, VGPU_REG_IRQ_CTRL, 0);
		mutex_unlock(&vdev->lock);
	}
	/* The v1 worker sees dead and ends the exchange it is in. */
	flush_work(&vdev->v1_work);
	mutex_lock(&vdev->lock);
	list_for_each_entry_safe(r, tmp, &vdev->v1_pending, node) {
		list_del(&r->node);
		r->error = -ENODEV;
		list_add_tail(&r->node, &done);
	}
	mutex_unlock(&vdev->lock);
	vgpu_complete_list(vdev, &done);

	/* Waiters in poll() see EPOLLHUP. */
	mutex_lock(&vdev->lock);
	list_for_each_entry(vf, &vdev->files, node)
		wake_up_interruptible(&vf->wq);
	mutex_unlock(&vdev->lock);

	if (vdev->path == VGPU_DRIVER_PATH_RINGS) {
		vgpu_ring_free(vdev);
		pci_clear_master(pdev);
	}
	ida_free(&vgpu_ida, vdev->id);
	pci_iounmap(pdev, vdev->bar0);
	vdev->bar0 = NULL;
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	dev_info(&pdev->dev, "/dev/%s removed\n", vdev->name);
	kref_put(&vdev->kref, vgpu_dev_free);
}

static const struct pci_device_id vgpu_ids[] = {
	{ PCI_DEVICE(VGPU_PCI_VENDOR_ID, VGPU_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vgpu_ids);

static struct pci_driver vgpu_driver = {
	.name = DRV_NAME,
	.id_table = vgpu_ids,
	.probe = vgpu_probe,
	.remove = vgpu_remove,
};

static int __init vgpu_init(void)
{
	if (!max_inflight || max_inflight > VGPU_RING_MAX_ENTRIES) {
		pr_err(DRV_NAME ": max_inflight must be 1..%u\n",
		       VGPU_RING_MAX_ENTRIES);
		return -EINVAL;
	}
	return pci_register_driver(&vgpu_driver);
}
module_init(vgpu_init);

static void __exit vgpu_exit(void)
{
	pci_unregister_driver(&vgpu_driver);
	ida_destroy(&vgpu_ida);
}
module_exit(vgpu_exit);

MODULE_DESCRIPTION("vgpu-stub paravirtual GPU sharing device");
MODULE_AUTHOR("vgpu project");
MODULE_LICENSE("GPL");
MODULE_VERSION(VGPU_MODULE_VERSION);
