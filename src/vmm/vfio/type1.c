/*
 * vfio/type1.c: the VFIO type1 IOMMU backend (Linux uAPI).
 *
 * The steps and their messages follow QEMU's hw/vfio/common.c:
 * vfio_get_group() opens /dev/vfio/<group> and checks it is viable;
 * vfio_connect_container() opens /dev/vfio/vfio, checks the API version
 * and picks Type1v2 over Type1 (vfio_get_iommu_type), attaches the group
 * (VFIO_GROUP_SET_CONTAINER) and only then sets the IOMMU model, since
 * the kernel refuses VFIO_SET_IOMMU on a container without a group.
 * vfio/device.c calls the steps in that order and unwinds them; each step here
 * leaves nothing open when it fails.
 */
#include "vfio/type1.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "dmg_i18n.h"

/* ------------------------------------------------------------------ */
/* System calls                                                        */

static int
sys_open(const char *path, int flags)
{
    return open(path, flags);
}

static int
sys_ioctl(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg);
}

static int
sys_close(int fd)
{
    return close(fd);
}

static const vfio_type1_sys default_sys = {
    .open = sys_open,
    .ioctl = sys_ioctl,
    .close = sys_close,
};

static const vfio_type1_sys *sys = &default_sys;

void
vfio_type1__set_sys(const vfio_type1_sys *s)
{
    sys = s ? s : &default_sys;
}

/* ------------------------------------------------------------------ */
/* Containers' backend data                                            */

typedef struct type1_container {
    guint32 iommu_type;                  /* VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU */
    bool iommu_set;                      /* VFIO_SET_IOMMU succeeded */
    guint64 iova_pgsizes;                /* VFIO_IOMMU_GET_INFO */
    int first_group;                     /* for messages; -1 before a group */
} type1_container;

guint32
vfio_type1__iommu_type(const vfio_container *c)
{
    const type1_container *t = c->backend_data;

    return t && t->iommu_set ? t->iommu_type : 0;
}

guint64
vfio_type1__iova_pgsizes(const vfio_container *c)
{
    const type1_container *t = c->backend_data;

    return t ? t->iova_pgsizes : 0;
}

static void
set_backend_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
set_backend_error(GError **error, const char *format, ...)
{
    va_list ap;

    if (!error)
        return;
    va_start(ap, format);
    g_propagate_error(error, g_error_new_valist(VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                                                format, ap));
    va_end(ap);
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        sys->close(*fd);
    *fd = -1;
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */

/* vfio_get_group() */
static int
type1_group_open(vfio_group *group, GError **error)
{
    g_autofree char *path = g_strdup_printf("/dev/vfio/%d", group->id);
    struct vfio_group_status status = { .argsz = sizeof(status) };
    int err;

    group->fd = sys->open(path, O_RDWR | O_CLOEXEC);
    if (group->fd < 0) {
        err = errno;
        group->fd = -1;
        set_backend_error(error, _("vfio: failed to open %s: %s"),
                          path, g_strerror(err));
        return -1;
    }
    if (sys->ioctl(group->fd, VFIO_GROUP_GET_STATUS, &status) < 0) {
        err = errno;
        close_fd(&group->fd);
        set_backend_error(error, _("vfio: failed to get group %d status: %s"),
                          group->id, g_strerror(err));
        return -1;
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        close_fd(&group->fd);
        set_backend_error(error, _("vfio: group %d is not viable. Please ensure all devices within the iommu_group are bound to their vfio bus driver."),
                          group->id);
        return -1;
    }
    return 0;
}

static void
type1_group_close(vfio_group *group)
{
    close_fd(&group->fd);
}

/* -1 with @error NULL when vfio/device.c only tries an existing container. */
static int
type1_group_set_container(vfio_group *group, vfio_container *c, GError **error)
{
    type1_container *t = c->backend_data;
    int err;

    if (sys->ioctl(group->fd, VFIO_GROUP_SET_CONTAINER, &c->fd) < 0) {
        err = errno;
        set_backend_error(error, _("vfio: failed to set the container of group %d: %s"),
                          group->id, g_strerror(err));
        return -1;
    }
    if (t && t->first_group < 0)
        t->first_group = group->id;
    return 0;
}

/* vfio_disconnect_container(): nothing to unwind if it fails; closing
 * the group fd releases the container as well. */
static void
type1_group_unset_container(vfio_group *group, vfio_container *c)
{
    int err;

    if (sys->ioctl(group->fd, VFIO_GROUP_UNSET_CONTAINER, NULL) < 0) {
        err = errno;
        g_warning(_("vfio: error disconnecting group %d from container: %s"),
                  group->id, g_strerror(err));
    }
}

/* ------------------------------------------------------------------ */
/* Containers                                                          */

static const char *
iommu_type_name(guint32 type)
{
    return type == VFIO_TYPE1v2_IOMMU ? "Type1v2" : "Type1";
}

/* vfio_get_iommu_type(): 1 if the container supports @type, 0 if not. */
static int
type1_check_extension(vfio_container *c, guint32 type, GError **error)
{
    int ret = sys->ioctl(c->fd, VFIO_CHECK_EXTENSION, (void *)(uintptr_t)type);
    int err;

    if (ret < 0) {
        err = errno;
        set_backend_error(error, _("vfio: failed to check for the %s IOMMU extension: %s"),
                          iommu_type_name(type), g_strerror(err));
        return -1;
    }
    return ret > 0;
}

/* The first half of vfio_connect_container(), up to the IOMMU model. */
static int
type1_container_open(vfio_container *c, GError **error)
{
    static const guint32 types[] = { VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU };
    type1_container *t;
    int ret, err;

    c->fd = sys->open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (c->fd < 0) {
        err = errno;
        c->fd = -1;
        set_backend_error(error, _("vfio: failed to open /dev/vfio/vfio: %s"),
                          g_strerror(err));
        return -1;
    }
    ret = sys->ioctl(c->fd, VFIO_GET_API_VERSION, NULL);
    if (ret < 0) {
        err = errno;
        set_backend_error(error, _("vfio: failed to get the VFIO API version: %s"),
                          g_strerror(err));
        goto err_close;
    }
    if (ret != VFIO_API_VERSION) {
        set_backend_error(error, _("vfio: supported vfio version: %d, reported version: %d"),
                          VFIO_API_VERSION, ret);
        goto err_close;
    }
    t = g_new0(type1_container, 1);
    t->first_group = -1;
    c->backend_data = t;
    for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
        ret = type1_check_extension(c, types[i], error);
        if (ret < 0)
            goto err_free;
        if (ret > 0) {
            t->iommu_type = types[i];
            return 0;
        }
    }
    set_backend_error(error, _("vfio: No available IOMMU models (the kernel supports neither VFIO Type1v2 nor Type1; is vfio_iommu_type1 loaded?)"));

 err_free:
    g_clear_pointer(&c->backend_data, g_free);
 err_close:
    close_fd(&c->fd);
    return -1;
}

/* The second half, after VFIO_GROUP_SET_CONTAINER: the model, and the
 * page sizes the IOMMU can map (vfio_get_iommu_info). */
static int
type1_container_set_iommu(vfio_container *c, GError **error)
{
    type1_container *t = c->backend_data;
    struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
    int err;

    if (sys->ioctl(c->fd, VFIO_SET_IOMMU, (void *)(uintptr_t)t->iommu_type) < 0) {
        err = errno;
        set_backend_error(error, _("vfio: group %d: failed to set iommu for container (%s): %s"),
                          t->first_group, iommu_type_name(t->iommu_type), g_strerror(err));
        return -1;
    }
    t->iommu_set = true;
    if (sys->ioctl(c->fd, VFIO_IOMMU_GET_INFO, &info) < 0) {
        err = errno;
        set_backend_error(error, _("vfio: group %d: can't get vfio iommu info: %s"),
                          t->first_group, g_strerror(err));
        return -1;
    }
    /* QEMU assumes the host page size when the kernel does not say. */
    t->iova_pgsizes = info.flags & VFIO_IOMMU_INFO_PGSIZES
                      ? info.iova_pgsizes : (guint64)sysconf(_SC_PAGESIZE);
    return 0;
}

/* Mappings come from vfio/listener.c through dma_map; nothing to do. */
static int
type1_listener_register(vfio_container *c, GError **error)
{
    return 0;
}

static void
type1_container_close(vfio_container *c)
{
    close_fd(&c->fd);
    g_clear_pointer(&c->backend_data, g_free);
}

/* vfio_dma_map() */
static int
type1_dma_map(vfio_container *c, guint64 iova, guint64 size, void *vaddr,
              bool readonly, GError **error)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_DMA_MAP_FLAG_READ | (readonly ? 0 : VFIO_DMA_MAP_FLAG_WRITE),
        .vaddr = (guint64)(uintptr_t)vaddr,
        .iova = iova,
        .size = size,
    };
    int err;

    if (sys->ioctl(c->fd, VFIO_IOMMU_MAP_DMA, &map) < 0) {
        err = errno;
        set_backend_error(error, _("vfio: VFIO_MAP_DMA of iova 0x%" PRIx64 " size 0x%" PRIx64 " failed: %s"),
                          iova, size, g_strerror(err));
        return -1;
    }
    return 0;
}

/* vfio_dma_unmap() */
static int
type1_dma_unmap(vfio_container *c, guint64 iova, guint64 size, GError **error)
{
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap),
        .flags = 0,
        .iova = iova,
        .size = size,
    };
    int err;

    if (sys->ioctl(c->fd, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0) {
        err = errno;
        set_backend_error(error, _("vfio: VFIO_UNMAP_DMA of iova 0x%" PRIx64 " size 0x%" PRIx64 " failed: %s"),
                          iova, size, g_strerror(err));
        return -1;
    }
    return 0;
}

const vfio_backend_ops vfio_backend_type1 = {
    .name = "type1",
    .group_open = type1_group_open,
    .group_close = type1_group_close,
    .group_set_container = type1_group_set_container,
    .group_unset_container = type1_group_unset_container,
    .container_open = type1_container_open,
    .container_set_iommu = type1_container_set_iommu,
    .listener_register = type1_listener_register,
    .container_close = type1_container_close,
    .dma_map = type1_dma_map,
    .dma_unmap = type1_dma_unmap,
};
