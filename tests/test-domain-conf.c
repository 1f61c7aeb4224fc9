/*
 * test-domain-conf.c: the domain XML parser: what it reads, how it names
 * devices, and how it refuses hostile or wrong input (a clear error with
 * element, attribute, value and line; never a partial result).
 */
#include <glib.h>
#include <string.h>

#include "domain_conf.h"

#define HEAD "<domain type='kvm'>\n<name>t</name>\n<memory unit='GiB'>4</memory>\n"

static dmgDomainDef *
parse(const char *xml, GError **error)
{
    return dmg_domain_def_parse_string(xml, strlen(xml), "t.xml", error);
}

/* Parse must fail with @code and a message containing every @needle. */
static void
assert_refused(const char *xml, int code, const char *const *needles)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgDomainDef) def = parse(xml, &err);

    g_assert_null(def);
    g_assert_error(err, DMG_CONF_ERROR, code);
    for (; needles && *needles; needles++) {
        if (!strstr(err->message, *needles))
            g_error("message '%s' lacks '%s'", err->message, *needles);
    }
    /* A person reads this: one line, not a dump. */
    g_assert_cmpuint(strlen(err->message), <, 400);
}

static void
test_parse_full(void)
{
    const char *xml =
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
        "<name>full</name><uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid>\n"
        "<metadata><dmaguard:domain xmlns:dmaguard='http://dmaguard.org/xmlns/domain/1.0'>"
        "<dmaguard:hostdev alias='hostdev1' migration-iommu-pt='yes'/></dmaguard:domain></metadata>\n"
        "<maxMemory slots='16' unit='GiB'>128</maxMemory>\n"
        "<memory unit='MiB'>8192</memory><currentMemory>4194304</currentMemory>\n"
        "<vcpu placement='static'>8</vcpu>\n"
        "<memtune><hard_limit unit='G'>20</hard_limit></memtune>\n"
        "<memoryBacking><hugepages><page size='1' unit='G'/></hugepages><locked/></memoryBacking>\n"
        "<os><type arch='x86_64' machine='pc-q35-8.1'>hvm</type></os>\n"
        "<features><ioapic driver='qemu'/></features>\n"
        "<devices><unknown-thing/><disk type='file' device='disk'><source file='/x'/><target dev='vda'/></disk>\n"
        "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio' model='mlx5_vfio_pci' iommufd='yes'/>"
        "<source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x1'/></source>"
        "<teaming type='transient' persistent='ua-net0'/></hostdev>\n"
        "<hostdev mode='subsystem' type='mdev' model='vfio-ccw'><source><address uuid='c0ffee00-0000-4000-8000-000000000002'/></source>"
        "<alias name='ua-ccw'/></hostdev>\n"
        "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>\n"
        "<memballoon model='virtio' autodeflate='on' freePageReporting='off'><stats period='10'/></memballoon>\n"
        "<iommu model='amd'><driver intremap='on' caching_mode='off' eim='on' iotlb='on' aw_bits='48' dma_translation='off' passthrough='on'/></iommu>\n"
        "<memory model='virtio-mem'><target><size unit='GiB'>16</size><node>0</node><block unit='MiB'>2</block><requested unit='GiB'>4</requested></target></memory>\n"
        "<memory model='dimm'><target><size unit='GiB'>1</size><node>0</node></target></memory>\n"
        "</devices>\n"
        "<qemu:override><qemu:device alias='hostdev2'><qemu:frontend>"
        "<qemu:property name='enable-migration' type='string' value='off'/>"
        "<qemu:property name='x-no-mmap' type='bool' value='true'/>"
        "</qemu:frontend></qemu:device></qemu:override>\n"
        "</domain>\n";
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgDomainDef) def = parse(xml, &err);
    dmgHostdevDef *h;
    dmgMemoryDef *m;

    g_assert_no_error(err);
    g_assert_cmpint(def->virt_type, ==, DMG_DOMAIN_VIRT_KVM);
    g_assert_cmpstr(def->machine, ==, "pc-q35-8.1");
    g_assert_cmpuint(def->memory, ==, 8ULL << 30);
    g_assert_cmpuint(def->current_memory, ==, 4ULL << 30);
    g_assert_cmpuint(def->max_memory, ==, 128ULL << 30);
    g_assert_cmpuint(def->max_memory_slots, ==, 16);
    g_assert_cmpuint(def->vcpus, ==, 8);
    g_assert_cmpuint(def->hard_limit, ==, 20ULL << 30);
    g_assert_true(def->locked && def->hugepages);
    g_assert_cmpuint(def->hugepage_size, ==, 1ULL << 30);
    g_assert_cmpint(def->ioapic_driver, ==, DMG_IOAPIC_QEMU);

    g_assert_cmpuint(def->hostdevs->len, ==, 3);
    h = g_ptr_array_index(def->hostdevs, 0);
    g_assert_cmpstr(h->alias, ==, "hostdev0");
    g_assert_true(h->alias_generated);
    g_assert_cmpuint(h->source.bus, ==, 0x3b);
    g_assert_cmpuint(h->source.function, ==, 1);
    g_assert_cmpstr(h->driver_model, ==, "mlx5_vfio_pci");
    g_assert_cmpint(h->iommufd, ==, DMG_TRISTATE_ON);
    g_assert_cmpint(h->teaming, ==, DMG_TEAMING_TRANSIENT);
    h = g_ptr_array_index(def->hostdevs, 1);
    g_assert_cmpstr(h->alias, ==, "ua-ccw");
    g_assert_cmpint(h->mdev_model, ==, DMG_MDEV_MODEL_VFIO_CCW);
    /* libvirt names by the hostdev's index, user aliases included */
    h = g_ptr_array_index(def->hostdevs, 2);
    g_assert_cmpstr(h->alias, ==, "hostdev2");
    g_assert_cmpint(h->enable_migration, ==, DMG_ON_OFF_AUTO_OFF);
    h = g_ptr_array_index(def->hostdevs, 1);
    g_assert_cmpint(h->migration_iommu_pt, ==, DMG_TRISTATE_ABSENT);

    g_assert_cmpstr(def->memballoon->alias, ==, "balloon0");
    g_assert_cmpint(def->memballoon->autodeflate, ==, DMG_TRISTATE_ON);
    g_assert_cmpint(def->memballoon->free_page_reporting, ==, DMG_TRISTATE_OFF);
    g_assert_cmpint(def->memballoon->stats_period, ==, 10);
    g_assert_cmpint(def->iommu->model, ==, DMG_IOMMU_MODEL_AMD);
    g_assert_cmpuint(def->iommu->aw_bits, ==, 48);
    g_assert_cmpint(def->iommu->dma_translation, ==, DMG_TRISTATE_OFF);
    g_assert_cmpint(def->iommu->passthrough, ==, DMG_TRISTATE_ON);

    g_assert_cmpuint(def->memories->len, ==, 2);
    m = g_ptr_array_index(def->memories, 0);
    g_assert_cmpint(m->model, ==, DMG_MEMORY_MODEL_VIRTIO_MEM);
    g_assert_cmpstr(m->alias, ==, "virtiomem0");
    g_assert_cmpuint(m->size, ==, 16ULL << 30);
    g_assert_cmpuint(m->block, ==, 2ULL << 20);
    g_assert_cmpuint(m->requested, ==, 4ULL << 30);
    g_assert_cmpint(m->node, ==, 0);
    g_assert_cmpstr(((dmgMemoryDef *)g_ptr_array_index(def->memories, 1))->alias, ==, "dimm0");
    /* The metadata names hostdev1, which is ua-ccw's index but not its
     * alias: nothing matches, and that is reported. */
    g_assert_cmpuint(def->parse_warnings->len, ==, 1);
}

/* qemu:override is what QEMU receives, so it wins over metadata. */
static void
test_override_wins_over_metadata(void)
{
    const char *xml =
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<name>t</name><memory>1048576</memory>"
        "<metadata><d:domain xmlns:d='http://dmaguard.org/xmlns/domain/1.0'>"
        "<d:hostdev alias='ua-v' balloon-allowed='no'/></d:domain></metadata>"
        "<devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
        "<source><address uuid='4b20d080-1b54-4048-85b3-a6a62d165c01'/></source><alias name='ua-v'/></hostdev></devices>"
        "<qemu:override><qemu:device alias='ua-v'><qemu:frontend>"
        "<qemu:property name='x-balloon-allowed' type='bool' value='true'/>"
        "</qemu:frontend></qemu:device></qemu:override></domain>";
    g_autoptr(dmgDomainDef) def = parse(xml, NULL);
    dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, 0);

    g_assert_cmpint(h->balloon_allowed, ==, DMG_TRISTATE_ON);
    g_assert_cmpint(h->balloon_allowed_src, ==, DMG_PROP_SRC_QEMU_OVERRIDE);
    g_assert_cmpuint(def->parse_warnings->len, ==, 1);
}

static void
test_hostile_truncated(void)
{
    const char *needles[] = { "t.xml:", "malformed XML", NULL };

    assert_refused(HEAD "<devices><hostdev mode='subsystem' ty", DMG_CONF_ERROR_XML, needles);
    assert_refused("", DMG_CONF_ERROR_XML, needles);
}

static void
test_hostile_billion_laughs(void)
{
    const char *xml =
        "<?xml version='1.0'?>\n<!DOCTYPE domain [\n"
        "<!ENTITY a '0123456789'>\n<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n"
        "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n"
        "<!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>\n<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>\n"
        "<!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>\n<!ENTITY h '&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;'>\n"
        "<!ENTITY i '&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;'>\n]>\n"
        "<domain type='kvm'><name>&i;</name><memory>1</memory></domain>\n";
    const char *needles[] = { "DOCTYPE", "not allowed", NULL };

    assert_refused(xml, DMG_CONF_ERROR_XML, needles);
}

static void
test_hostile_external_entity(void)
{
    const char *xml =
        "<?xml version='1.0'?>\n<!DOCTYPE domain [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>\n"
        "<domain type='kvm'><name>&xxe;</name><memory>1</memory></domain>\n";
    const char *needles[] = { "DOCTYPE", NULL };
    g_autoptr(GError) err = NULL;

    assert_refused(xml, DMG_CONF_ERROR_XML, needles);
    g_assert_null(parse(xml, &err));
    g_assert_null(strstr(err->message, "root:"));
}

static void
test_hostile_huge_attribute(void)
{
    gsize n = 10 * 1024 * 1024;
    g_autofree char *big = g_malloc(n + 1);
    g_autofree char *xml = NULL;
    const char *needles[] = { "t.xml:4", "too long", NULL };
    const char *just_under[] = { "t.xml:4", "'model'", "<memballoon>", "bytes)", NULL };

    memset(big, 'A', n);
    big[n] = '\0';
    /* libxml2 caps attribute values at 10,000,000 bytes... */
    xml = g_strdup_printf(HEAD "<devices><memballoon model='%s'/></devices></domain>", big);
    assert_refused(xml, DMG_CONF_ERROR_XML, needles);
    /* ...and just under the cap our own check names it, shortened. */
    g_free(xml);
    big[9 * 1024 * 1024] = '\0';
    xml = g_strdup_printf(HEAD "<devices><memballoon model='%s'/></devices></domain>", big);
    assert_refused(xml, DMG_CONF_ERROR_INVALID, just_under);
}

/* Issue 14: libxml2's own quadratic paths.  100k attributes on one
 * element took 15 s, 200k xmlns declarations 19 s; the pre-scan refuses
 * both before libxml2 sees them, naming the line and the limit.  Where
 * the limit is passes: 256 attributes (a namespace declaration counts)
 * are read; 257 are not. */
static void
test_hostile_many_attributes(void)
{
    const char *needles[] = { "t.xml:4", "more than 256 attributes", NULL };
    g_autoptr(GString) xml = g_string_new(HEAD "<devices><memballoon model='none'");
    g_autoptr(GString) ns = g_string_new(HEAD "<devices><memballoon model='none'");
    g_autoptr(dmgDomainDef) def = NULL;
    g_autoptr(GError) err = NULL;
    gint64 start = g_get_monotonic_time();

    for (unsigned i = 1; i < 256; i++)
        g_string_append_printf(xml, " a%u='1'", i);
    g_string_append(xml, "/></devices></domain>");
    def = dmg_domain_def_parse_string(xml->str, xml->len, "t.xml", &err);
    g_assert_no_error(err);
    g_assert_nonnull(def);
    g_string_truncate(xml, xml->len - strlen("/></devices></domain>"));
    for (unsigned i = 256; i < 100000; i++)
        g_string_append_printf(xml, " a%u='1'", i);
    g_string_append(xml, "/></devices></domain>");
    assert_refused(xml->str, DMG_CONF_ERROR_XML, needles);
    for (unsigned i = 0; i < 200000; i++)
        g_string_append_printf(ns, " xmlns:n%u='urn:x:%u'", i, i);
    g_string_append(ns, "/></devices></domain>");
    assert_refused(ns->str, DMG_CONF_ERROR_XML, needles);
    /* Bounded, not timed: seconds of slack on a slow or busy machine,
     * where libxml2 alone took 15 s. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
}

static void
test_wrong_value_types(void)
{
    struct { const char *xml; const char *needles[5]; } cases[] = {
        { HEAD "<devices><memballoon model='virtio' autodeflate='maybe'/></devices></domain>",
          { "t.xml:4", "'maybe'", "'autodeflate'", "<memballoon>", NULL } },
        { "<domain type='kvm'><name>t</name><memory unit='GiB'>lots</memory></domain>",
          { "'lots'", "<memory>", NULL } },
        { "<domain type='kvm'><name>t</name><memory unit='parsecs'>1</memory></domain>",
          { "'parsecs'", "'unit'", NULL } },
        { "<domain type='kvm'><name>t</name><memory unit='EiB'>100</memory></domain>",
          { "'100'", "64 bits", NULL } },
        { HEAD "<devices><hostdev mode='subsystem' type='pci'><source>"
          "<address domain='0' bus='0x1ff' slot='0' function='0'/></source></hostdev></devices></domain>",
          { "'0x1ff'", "'bus'", "<address>", NULL } },
        { HEAD "<devices><hostdev mode='subsystem' type='pci'><source>"
          "<address domain='0' bus='-1' slot='0' function='0'/></source></hostdev></devices></domain>",
          { "'-1'", "'bus'", NULL } },
        { HEAD "<devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
          "<address uuid='not-a-uuid'/></source></hostdev></devices></domain>",
          { "'not-a-uuid'", "'uuid'", NULL } },
        { HEAD "<devices><hostdev mode='subsystem' type='floppy'/></devices></domain>",
          { "'floppy'", "'type'", "<hostdev>", NULL } },
        { HEAD "<devices><iommu model='intel'><driver aw_bits='wide'/></iommu></devices></domain>",
          { "'wide'", "'aw_bits'", "<driver>", NULL } },
        { HEAD "<vcpu>1e3</vcpu></domain>", { "'1e3'", "<vcpu>", NULL } },
        /* virDomainDeviceAddressParseXML(): the types libvirt knows */
        { HEAD "<devices><memballoon model='virtio'><address type='isa-pnp'/></memballoon>"
          "</devices></domain>", { "'isa-pnp'", "'type'", "<address>", NULL } },
        /* virCCWDeviceAddressParseXML(): cssid at most 0xfe, ssid 3 */
        { HEAD "<devices><memballoon model='virtio'><address type='ccw' cssid='0xff' ssid='0'"
          " devno='1'/></memballoon></devices></domain>", { "'0xff'", "'cssid'", NULL } },
        { HEAD "<devices><memballoon model='virtio'><address type='ccw' cssid='0xfe' ssid='0x4'"
          " devno='1'/></memballoon></devices></domain>", { "'0x4'", "'ssid'", NULL } },
        /* ... and all three or none */
        { HEAD "<devices><memballoon model='virtio'><address type='ccw' cssid='0xfe'/>"
          "</memballoon></devices></domain>", { "t.xml:4", "partial", "ccw", NULL } },
        { HEAD "<devices><memballoon model='virtio'><driver ats='yes'/></memballoon>"
          "</devices></domain>", { "'yes'", "'ats'", "<driver>", NULL } },
        /* virBitmapParse() for a <page>'s nodeset */
        { HEAD "<memoryBacking><hugepages><page size='2048' nodeset='0-x'/></hugepages>"
          "</memoryBacking></domain>", { "'0-x'", "'nodeset'", "<page>", NULL } },
        { HEAD "<devices><disk type='floppy'/></devices></domain>",
          { "'floppy'", "'type'", "<disk>", NULL } },
        { HEAD "<devices><disk type='file'><backingStore type='nvme0'/></disk></devices></domain>",
          { "'nvme0'", "'type'", "<backingStore>", NULL } },
        { HEAD "<devices><controller type='pci' model='pci-root' index='256'/></devices></domain>",
          { "'256'", "'index'", NULL } },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        assert_refused(cases[i].xml, DMG_CONF_ERROR_INVALID, cases[i].needles);
    }
}

static void
test_missing_and_unsupported(void)
{
    const char *two_balloons[] = { "single memory balloon", NULL };
    const char *two_iommus[] = { "single IOMMU", NULL };
    const char *root[] = { "<network>", NULL };
    const char *name[] = { "<name>", NULL };
    const char *xen[] = { "'xen'", NULL };

    /* libvirt refuses these too; the first parser leaked the first one */
    assert_refused(HEAD "<devices><memballoon model='virtio'/><memballoon model='none'/></devices></domain>",
                   DMG_CONF_ERROR_INVALID, two_balloons);
    assert_refused(HEAD "<devices><iommu model='intel'/><iommu model='virtio'/></devices></domain>",
                   DMG_CONF_ERROR_INVALID, two_iommus);
    assert_refused("<network/>", DMG_CONF_ERROR_XML, root);
    assert_refused("<domain type='kvm'><memory>1</memory></domain>", DMG_CONF_ERROR_MISSING, name);
    assert_refused("<domain type='xen'><name>t</name><memory>1</memory></domain>",
                   DMG_CONF_ERROR_UNSUPPORTED, xen);
    {
        const char *needles[] = { "'on'", "'value'", "bool", NULL };

        assert_refused("<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
                       "<name>t</name><memory>1</memory><devices><hostdev mode='subsystem' type='pci'>"
                       "<source><address bus='1'/></source></hostdev></devices>"
                       "<qemu:override><qemu:device alias='hostdev0'><qemu:frontend>"
                       "<qemu:property name='x-balloon-allowed' type='string' value='on'/>"
                       "</qemu:frontend></qemu:device></qemu:override></domain>",
                       DMG_CONF_ERROR_INVALID, needles);
    }
}

/* <disk> and <controller type='pci'>: the NVMe disks (the disk's own
 * type or any <backingStore> of its chain, once per disk) and the PCI
 * controllers a pSeries guest can have, whose missing index is the
 * lowest unused one (virDomainAssignControllerIndexes()).  Of a <disk>
 * the reader keeps only the <backingStore> chain, and it drops the PCIe
 * controllers. */
static void
test_disks_and_controllers(void)
{
    const char *xml =
        HEAD "<memtune><hard_limit>0</hard_limit></memtune>\n<devices>\n"
        "<disk type='nvme' device='disk'><driver name='qemu' type='raw'/>"
        "<source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>"
        "<target dev='vda' bus='virtio'/></disk>\n"
        "<disk type='file'><source file='/a.qcow2'/><backingStore type='file'><format type='qcow2'/>"
        "<backingStore type='nvme'><format type='raw'/><backingStore type='nvme'/></backingStore>"
        "</backingStore><target dev='vdb'/></disk>\n"
        "<disk type='file'><backingStore/><target dev='vdc'/></disk>\n"
        "<disk device='cdrom'><target dev='sda'/></disk>\n"
        "<controller type='pci' model='pci-root'/>\n"
        "<controller type='usb' index='0'/>\n"
        "<controller type='pci' index='2' model='pci-root'><address type='pci' bus='0x01' slot='0x03'/></controller>\n"
        "<controller type='pci' index='3' model='pcie-root-port'><target chassis='3'/></controller>\n"
        "<controller type='pci' model='pci-bridge'/>\n"
        "<controller type='pci' index='4'/>\n"
        "</devices></domain>";
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgDomainDef) def = parse(xml, &err);
    static const struct { int model; unsigned index; } want[] = {
        { DMG_CONTROLLER_MODEL_PCI_ROOT, 0 }, { DMG_CONTROLLER_MODEL_PCI_ROOT, 2 },
        { DMG_CONTROLLER_MODEL_PCI_BRIDGE, 1 }, { -1, 4 },
    };

    g_assert_no_error(err);
    g_assert_cmpuint(def->nvme_disks, ==, 2);
    g_assert_true(def->hard_limit_set);
    g_assert_cmpuint(def->hard_limit, ==, 0);
    g_assert_cmpuint(def->pci_controllers->len, ==, G_N_ELEMENTS(want));
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++) {
        const dmgPCIControllerDef *c = &g_array_index(def->pci_controllers, dmgPCIControllerDef, i);

        g_assert_cmpint(c->model, ==, want[i].model);
        g_assert_cmpuint(c->index, ==, want[i].index);
        g_assert_true(c->guest.pci.present == (i == 1));
    }
    g_assert_cmpuint(g_array_index(def->pci_controllers, dmgPCIControllerDef, 1).guest.pci.bus, ==, 1);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/conf/parse-full", test_parse_full);
    g_test_add_func("/conf/override-wins-over-metadata", test_override_wins_over_metadata);
    g_test_add_func("/conf/hostile/truncated", test_hostile_truncated);
    g_test_add_func("/conf/hostile/billion-laughs", test_hostile_billion_laughs);
    g_test_add_func("/conf/hostile/external-entity", test_hostile_external_entity);
    g_test_add_func("/conf/hostile/10mb-attribute", test_hostile_huge_attribute);
    g_test_add_func("/conf/hostile/many-attributes", test_hostile_many_attributes);
    g_test_add_func("/conf/wrong-value-types", test_wrong_value_types);
    g_test_add_func("/conf/missing-and-unsupported", test_missing_and_unsupported);
    g_test_add_func("/conf/disks-and-controllers", test_disks_and_controllers);
    return g_test_run();
}
