/*
 * accel/guest_program.S: the guest program of accel/kvm_vcpu.h, 32-bit flat protected
 * mode, paging off.  Loaded at GUEST_PROGRAM_ADDR but position independent:
 * the only absolute address is the params blocks at GUEST_PARAMS_ADDR.
 *
 * Entry: EDI = vCPU id, ESP = its stack top (unused), interrupts off.
 *
 * Registers: EBX params block, EBP previous pass number, EDX new pass
 * number, EAX page address, ECX stride (nr_vcpus pages), ESI scratch,
 * EDI pages left until the next dirty-rate tick.
 */

/* Offsets in guest_params (accel/kvm_vcpu.c checks them with offsetof). */
#define P_RAM_START   0
#define P_RAM_END     4
#define P_HOLE_START  8
#define P_HOLE_END    12
#define P_ID          16
#define P_NR_VCPUS    20
#define P_STOP        24
#define P_ERRORS      28
#define P_PASS        32
#define P_PAGES_PER_TICK 36
#define P_SIZE_SHIFT  6                 /* sizeof(guest_params) == 64 */

#define PARAMS_ADDR   0x8000            /* GUEST_PARAMS_ADDR */
#define PORT_PASS     0x10              /* GUEST_PORT_PASS */
#define PORT_DONE     0x11              /* GUEST_PORT_DONE */
#define PORT_TICK     0x12              /* GUEST_PORT_TICK */
#define PAGE_SHIFT    12

    .section .rodata
    .code32
    .globl dmg_guest_program_start
    .globl dmg_guest_program_end

dmg_guest_program_start:
    cli
    cld
    movl    %edi, %ebx
    shll    $P_SIZE_SHIFT, %ebx
    addl    $PARAMS_ADDR, %ebx          /* EBX = &params[id] */
    xorl    %ebp, %ebp                  /* nothing written yet: pass 0 */
    xorl    %edi, %edi                  /* tick at the first page */

.Lpass:
    leal    1(%ebp), %edx               /* this pass */
    movl    P_ID(%ebx), %eax
    shll    $PAGE_SHIFT, %eax
    addl    P_RAM_START(%ebx), %eax     /* first own page */
    jc      .Lpass_done
    movl    P_NR_VCPUS(%ebx), %ecx
    shll    $PAGE_SHIFT, %ecx           /* stride */

.Lpage:
    cmpl    P_RAM_END(%ebx), %eax
    jae     .Lpass_done
    cmpl    P_HOLE_START(%ebx), %eax
    jb      .Lcheck
    cmpl    P_HOLE_END(%ebx), %eax
    jb      .Lnext                      /* in [hole_start, hole_end) */
.Lcheck:
    movl    (%eax), %esi
    cmpl    %ebp, %esi
    je      .Lwrite
    incl    P_ERRORS(%ebx)
.Lwrite:
    movl    %edx, (%eax)
    cmpl    $0, P_PAGES_PER_TICK(%ebx)
    je      .Lnext                      /* no dirty rate limit */
    decl    %edi
    jg      .Lnext
    movl    P_PAGES_PER_TICK(%ebx), %edi
    outl    %eax, $PORT_TICK            /* the host may hold this vCPU */
.Lnext:
    addl    %ecx, %eax
    jnc     .Lpage                      /* wrapped past 4 GiB: done */

.Lpass_done:
    movl    %edx, P_PASS(%ebx)
    movl    %edx, %ebp
    movl    %edx, %eax
    outl    %eax, $PORT_PASS
    cmpl    $0, P_STOP(%ebx)
    je      .Lpass

    movl    P_ERRORS(%ebx), %eax
    outl    %eax, $PORT_DONE
.Lhalt:
    hlt
    jmp     .Lhalt

dmg_guest_program_end:
    .code64

    .section .note.GNU-stack, "", @progbits
